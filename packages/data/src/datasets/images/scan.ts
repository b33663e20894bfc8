/**
 * Listing a user's labelled images before anything is decoded: class folders
 * (`DIR/<class>/...`, optionally under `DIR/train|validation|test`) or a manifest (CSV / JSONL of
 * `path,label`). Every mistake found here is a located ConfigError (exit 2) before training.
 */
import { readFileSync, readdirSync, statSync, type Dirent } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { ConfigError, type SourceLocation } from '@tessera/core/registry';
import { IMAGE_EXTENSIONS } from '../../image/decode.ts';

/** One split's images: absolute paths and class indices, in a fixed order. */
export interface FileList {
  files: string[];
  labels: number[];
  /** The file (and line) each image was listed on, for located errors after scanning. */
  sources?: SourceLocation[];
}

export interface ScannedImages {
  classNames: string[];
  train: FileList;
  validation?: FileList;
  test?: FileList;
}

/** Where a scan error points: the config key and its location. */
export interface ScanContext {
  /** The config path of the directory or manifest key, e.g. ['data', 'dir']. */
  path: (string | number)[];
  location?: SourceLocation;
  /** Class names in index order (`classes:`); default: found (sorted folder names / manifest labels). */
  classes?: string[];
  /** Skip files with other extensions instead of failing. */
  ignoreUnknownFiles?: boolean;
}

const SPLIT_DIRS = ['train', 'validation', 'test'] as const;
/** OS litter that is never an image and never worth an error. */
const IGNORED = new Set(['thumbs.db', 'desktop.ini']);
const ignored = (name: string) => name.startsWith('.') || IGNORED.has(name.toLowerCase());

function scanError(ctx: ScanContext, message: string, hint?: string, location = ctx.location): ConfigError {
  return new ConfigError({ path: ctx.path, message, ...(location ? { location } : {}), ...(hint ? { hint } : {}) });
}

function readDir(dir: string, ctx: ScanContext): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (cause) {
    throw scanError(ctx, `cannot read directory ${dir}: ${(cause as Error).message}`);
  }
}

/** A file entry's kind after following a symlink; a dangling link or unreadable entry is an error. */
function kindOf(path: string, entry: Dirent, ctx: ScanContext): 'file' | 'dir' | 'other' {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'dir';
  if (entry.isSymbolicLink()) {
    try {
      const s = statSync(path);
      return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
    } catch (cause) {
      throw scanError(ctx, `unreadable file ${path}: ${(cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'a link to a missing file' : (cause as Error).message}`);
    }
  }
  return 'other';
}

const listExtensions = () => IMAGE_EXTENSIONS.join(' ');

/** Image files under a class folder, recursively (as Keras), sorted by path. */
function imagesUnder(dir: string, ctx: ScanContext, unknown: string[]): string[] {
  const out: string[] = [];
  for (const entry of readDir(dir, ctx)) {
    if (ignored(entry.name)) continue;
    const path = join(dir, entry.name);
    const kind = kindOf(path, entry, ctx);
    if (kind === 'dir') out.push(...imagesUnder(path, ctx, unknown));
    else if (kind === 'file') {
      if (IMAGE_EXTENSIONS.includes(extname(entry.name).toLowerCase())) out.push(path);
      else unknown.push(path);
    }
  }
  return out;
}

function checkUnknown(unknown: string[], ctx: ScanContext): void {
  if (unknown.length === 0 || ctx.ignoreUnknownFiles) return;
  const shown = unknown.slice(0, 3).join(', ');
  const more = unknown.length > 3 ? ` and ${unknown.length - 3} more` : '';
  throw scanError(
    ctx,
    `${unknown.length} file(s) with an unknown extension: ${shown}${more} (images are ${listExtensions()})`,
    'move them out of the dataset folder, or set ignore_unknown_files: true to skip them',
  );
}

function classFolders(dir: string, ctx: ScanContext): string[] {
  const folders: string[] = [];
  const loose: string[] = [];
  for (const entry of readDir(dir, ctx)) {
    if (ignored(entry.name)) continue;
    const kind = kindOf(join(dir, entry.name), entry, ctx);
    if (kind === 'dir') folders.push(entry.name);
    else if (kind === 'file') loose.push(join(dir, entry.name));
  }
  if (loose.length > 0 && !ctx.ignoreUnknownFiles) {
    throw scanError(
      ctx,
      `${loose.length} file(s) directly in ${dir} (${loose.slice(0, 3).join(', ')}${loose.length > 3 ? ', ...' : ''}): images must sit in one folder per class, ${dir}/<class>/<image>`,
      'move each image into the folder named after its class, or set ignore_unknown_files: true to skip loose files',
    );
  }
  return folders;
}

/** `dir/<class>/**` with the given class list (already validated), into one FileList. */
function listClasses(dir: string, classNames: string[], folders: string[], ctx: ScanContext): FileList {
  const files: string[] = [];
  const labels: number[] = [];
  const unknown: string[] = [];
  for (const folder of folders) {
    const label = classNames.indexOf(folder);
    const images = imagesUnder(join(dir, folder), ctx, unknown);
    if (images.length === 0) {
      throw scanError(ctx, `class folder ${join(dir, folder)} has no images (${listExtensions()})`, 'add images to it or remove the folder');
    }
    for (const file of images) {
      files.push(file);
      labels.push(label);
    }
  }
  checkUnknown(unknown, ctx);
  return { files, labels };
}

function checkClassCount(classNames: string[], where: string, ctx: ScanContext): void {
  if (classNames.length === 0) {
    throw scanError(ctx, `no class folders in ${where}: expected ${where}/<class>/<image> (one folder per class)`);
  }
  if (classNames.length === 1) {
    throw scanError(ctx, `only one class folder in ${where} ("${classNames[0]}"): a classifier needs at least 2 classes`, 'add a folder per class, each holding its images');
  }
}

/**
 * The class names of an image folder from its folder names alone (no image is opened): what
 * `describe` needs before any data is read, and the first step of `scanImageFolder`.
 */
export function folderClasses(dir: string, ctx: ScanContext): { classNames: string[]; trainDir: string; trainFolders: string[]; splitLayout: boolean; top: string[] } {
  const top = classFolders(dir, { ...ctx, ignoreUnknownFiles: true });
  const splitLayout = top.includes('train') && top.every((name) => (SPLIT_DIRS as readonly string[]).includes(name));
  const trainDir = splitLayout ? join(dir, 'train') : dir;
  if (!splitLayout) classFolders(dir, ctx); // loose files directly in dir are an error
  const trainFolders = classFolders(trainDir, ctx);
  checkClassCount(trainFolders, trainDir, ctx);
  let classNames = trainFolders;
  if (ctx.classes) {
    const missing = ctx.classes.filter((c) => !trainFolders.includes(c));
    const extra = trainFolders.filter((c) => !ctx.classes!.includes(c));
    if (missing.length > 0 || extra.length > 0) {
      throw scanError(
        ctx,
        `the class folders of ${trainDir} do not match data.classes: ${missing.length ? `no folder for ${missing.map((c) => `"${c}"`).join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `folders not in the list: ${extra.map((c) => `"${c}"`).join(', ')}` : ''}`,
    );
    }
    classNames = ctx.classes;
  }
  return { classNames, trainDir, trainFolders, splitLayout, top };
}

/**
 * Scans an image folder: `dir/<class>/**`, or `dir/train/<class>/**` with optional
 * `dir/validation` and `dir/test` laid out the same way. Classes are the sorted folder names
 * of the training folder (Keras' image_dataset_from_directory), unless `ctx.classes` names them.
 */
export function scanImageFolder(dir: string, ctx: ScanContext): ScannedImages {
  const { classNames, trainDir, trainFolders, splitLayout, top } = folderClasses(dir, ctx);
  const scanned: ScannedImages = { classNames, train: listClasses(trainDir, classNames, trainFolders, ctx) };
  if (splitLayout) {
    for (const split of ['validation', 'test'] as const) {
      if (!top.includes(split)) continue;
      const splitDir = join(dir, split);
      const folders = classFolders(splitDir, ctx);
      const strangers = folders.filter((f) => !classNames.includes(f));
      if (strangers.length > 0) {
        throw scanError(ctx, `${splitDir} has class folder(s) not in the training classes: ${strangers.map((c) => `"${c}"`).join(', ')} (classes: ${classNames.join(', ')})`);
      }
      if (folders.length === 0) throw scanError(ctx, `no class folders in ${splitDir}: expected ${splitDir}/<class>/<image>`);
      scanned[split] = listClasses(splitDir, classNames, folders, ctx);
    }
  }
  return scanned;
}

/** A minimal RFC 4180 reader: quoted fields with "" escapes; hand-written because rows are two or three plain columns. */
export function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') fields.push(field), (field = '');
    else field += ch;
  }
  fields.push(field);
  return fields.map((f) => f.trim());
}

interface ManifestRow {
  path: string;
  label: string | number;
  split?: string;
  line: number;
}

const PATH_COLUMNS = ['path', 'file', 'filename', 'image', 'file_name'];
const LABEL_COLUMNS = ['label', 'class', 'class_name', 'target'];

function readManifestRows(file: string, ctx: ScanContext): ManifestRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw scanError(ctx, `cannot read manifest ${file}: ${(cause as Error).message}`);
  }
  const lines = text.split(/\r?\n/);
  const at = (line: number): SourceLocation => ({ file, line, col: 1 });
  const rows: ManifestRow[] = [];
  const jsonl = /\.jsonl$|\.ndjson$/i.test(file);
  let columns: { path: number; label: number; split: number } | undefined;
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) return;
    if (jsonl) {
      let row: Record<string, unknown>;
      try {
        row = JSON.parse(raw) as Record<string, unknown>;
      } catch (cause) {
        throw scanError(ctx, `${file}:${line}: not a JSON object: ${(cause as Error).message}`, undefined, at(line));
      }
      const path = PATH_COLUMNS.map((k) => row[k]).find((v) => v !== undefined);
      const label = LABEL_COLUMNS.map((k) => row[k]).find((v) => v !== undefined);
      if (typeof path !== 'string' || !(typeof label === 'string' || Number.isInteger(label))) {
        throw scanError(ctx, `${file}:${line}: expected {"path": string, "label": name or integer}, got ${raw.trim().slice(0, 80)}`, undefined, at(line));
      }
      rows.push({ path, label: label as string | number, ...(typeof row.split === 'string' ? { split: row.split } : {}), line });
      return;
    }
    const fields = parseCsvLine(raw);
    if (!columns) {
      const lower = fields.map((f) => f.toLowerCase());
      const path = lower.findIndex((f) => PATH_COLUMNS.includes(f));
      const label = lower.findIndex((f) => LABEL_COLUMNS.includes(f));
      if (path >= 0 && label >= 0) {
        columns = { path, label, split: lower.indexOf('split') };
        return; // a header row
      }
      columns = { path: 0, label: 1, split: fields.length > 2 ? 2 : -1 };
    }
    const path = fields[columns.path];
    const label = fields[columns.label];
    if (!path || label === undefined || label === '') {
      throw scanError(ctx, `${file}:${line}: expected "path,label", got ${JSON.stringify(raw.slice(0, 80))}`, undefined, at(line));
    }
    rows.push({ path, label: /^\d+$/.test(label) ? Number(label) : label, ...(columns.split >= 0 && fields[columns.split] ? { split: fields[columns.split] } : {}), line });
  });
  if (rows.length === 0) throw scanError(ctx, `manifest ${file} lists no images`);
  return rows;
}

/**
 * Reads a manifest: CSV (`path,label[,split]`, an optional header naming the columns) or JSONL
 * (`{"path": ..., "label": ..., "split": ...}`); paths are relative to the manifest's folder.
 * Labels are all class names or all integer indices. Classes: `ctx.classes` when given (a label
 * not in it is an error), else the sorted distinct names, or 0..max for integer labels.
 */
/** The class names a manifest's rows imply (see scanManifest), from the text alone. */
function rowClasses(rows: ManifestRow[], file: string, ctx: ScanContext): string[] {
  const at = (row: ManifestRow): SourceLocation => ({ file, line: row.line, col: 1 });
  const numeric = rows.filter((r) => typeof r.label === 'number').length;
  if (numeric > 0 && numeric < rows.length && !ctx.classes) {
    const row = rows.find((r) => typeof r.label === (typeof rows[0]!.label === 'number' ? 'string' : 'number'))!;
    throw scanError(ctx, `${file}:${row.line}: label ${JSON.stringify(row.label)} mixes names and integers in one manifest`, 'use class names everywhere, or integers everywhere', at(row));
  }
  let classNames: string[];
  if (ctx.classes) classNames = ctx.classes;
  else if (numeric === rows.length) {
    const max = Math.max(...rows.map((r) => r.label as number));
    classNames = Array.from({ length: max + 1 }, (_, i) => String(i));
  } else classNames = [...new Set(rows.map((r) => r.label as string))].sort();
  if (classNames.length < 2) {
    throw scanError(ctx, `manifest ${file} has only one class ("${classNames[0]}"): a classifier needs at least 2 classes`);
  }
  return classNames;
}

/** A manifest's class names without checking its files: what `describe` needs. */
export function manifestClasses(file: string, ctx: ScanContext): string[] {
  return rowClasses(readManifestRows(file, ctx), file, ctx);
}

export function scanManifest(file: string, ctx: ScanContext): ScannedImages {
  const rows = readManifestRows(file, ctx);
  const at = (row: ManifestRow): SourceLocation => ({ file, line: row.line, col: 1 });
  const classNames = rowClasses(rows, file, ctx);
  const base = dirname(resolve(file));
  const lists: Record<string, FileList> = {};
  const unknown: string[] = [];
  for (const row of rows) {
    const label = typeof row.label === 'number' && (ctx.classes === undefined || !ctx.classes.includes(String(row.label))) ? row.label : classNames.indexOf(String(row.label));
    if (!(label >= 0 && label < classNames.length)) {
      throw scanError(
        ctx,
        `${file}:${row.line}: label ${JSON.stringify(row.label)} is not one of the ${classNames.length} classes (${classNames.slice(0, 10).join(', ')}${classNames.length > 10 ? ', ...' : ''})`,
        ctx.classes ? 'add it to data.classes or fix the row' : undefined,
        at(row),
      );
    }
    const path = resolve(base, row.path);
    let ok = false;
    try {
      ok = statSync(path).isFile();
    } catch {
      ok = false;
    }
    if (!ok) throw scanError(ctx, `${file}:${row.line}: ${row.path} does not exist (${path})`, 'paths are relative to the manifest file', at(row));
    if (!IMAGE_EXTENSIONS.includes(extname(path).toLowerCase())) {
      if (ctx.ignoreUnknownFiles) continue;
      unknown.push(`${row.path} (line ${row.line})`);
      continue;
    }
    const split = row.split ?? 'train';
    if (!(SPLIT_DIRS as readonly string[]).includes(split)) {
      throw scanError(ctx, `${file}:${row.line}: split "${split}" is not one of train, validation, test`, undefined, at(row));
    }
    const list = (lists[split] ??= { files: [], labels: [], sources: [] });
    list.files.push(path);
    list.labels.push(label);
    list.sources!.push(at(row));
  }
  checkUnknown(unknown, ctx);
  if (!lists.train) throw scanError(ctx, `manifest ${file} has no training rows (every row has a split other than train)`);
  return { classNames, train: lists.train, ...(lists.validation ? { validation: lists.validation } : {}), ...(lists.test ? { test: lists.test } : {}) };
}

/** A short, stable name for a file in messages: relative to the dataset root when inside it. */
export function displayPath(file: string, root: string): string {
  const rel = relative(root, file);
  return rel.startsWith('..') ? file : rel;
}
