// The architecture as a test (docs/architecture.md, "What may import what"): every import of
// every package's source, read with the TypeScript parser, checked against the allowed edges.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

interface Import {
  from: string; // file, relative to the repository root
  specifier: string;
  typeOnly: boolean;
  dynamic: boolean;
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== '__fixtures__') yield* sourceFiles(path);
    } else if (/\.(ts|mts|mjs|js)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      yield path;
    }
  }
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const from = relative(ROOT, file);
  const found: Import[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(node)
        ? Boolean(node.importClause?.isTypeOnly) ||
          Boolean(node.importClause && !node.importClause.name && node.importClause.namedBindings && ts.isNamedImports(node.importClause.namedBindings) && node.importClause.namedBindings.elements.length > 0 && node.importClause.namedBindings.elements.every((e) => e.isTypeOnly))
        : node.isTypeOnly;
      found.push({ from, specifier: node.moduleSpecifier.text, typeOnly, dynamic: false });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      found.push({ from, specifier: node.arguments[0].text, typeOnly: false, dynamic: true });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ from, specifier: node.argument.literal.text, typeOnly: true, dynamic: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const PACKAGES = readdirSync(join(ROOT, 'packages')).sort();
const packageOf = (file: string) => file.split('/')[1]!;
const sources = new Map<string, Import[]>();
for (const name of PACKAGES) for (const file of sourceFiles(join(ROOT, 'packages', name, 'src'))) sources.set(relative(ROOT, file), importsOf(file));
const all = [...sources.values()].flat();

/** The Tessera entry point an import names: `@tessera/core/registry` etc.; undefined for others. */
const tesseraEntry = (specifier: string) => (specifier.startsWith('@tessera/') ? specifier : undefined);

/**
 * Which Tessera entry points each package's source may import. Dependencies point one way:
 * the MLflow client knows nothing of Tessera; core knows only the client; models and data see
 * only core's registry, backend and random entry points (never the engine, tracking or each other);
 * the composition root and the sweeps sit above core; the CLI on top. The CLI also reads
 * `@tessera/core/safety` (the one redaction function) before it loads the rest of core.
 */
const ALLOWED: Record<string, RegExp> = {
  mlflow: /^$/,
  core: /^@tessera\/mlflow$/,
  models: /^@tessera\/core\/(registry|backend|random)$/,
  data: /^@tessera\/core\/(registry|backend|random)$/,
  builtins: /^@tessera\/(core|models|data)$/,
  sweeps: /^@tessera\/(core|mlflow)$/,
  cli: /^@tessera\/(core(\/safety)?|data|mlflow|builtins|sweeps(\/queue)?)$/,
};

describe('the import graph (docs/architecture.md)', () => {
  it('covers every package, and reads imports from real source', () => {
    expect(Object.keys(ALLOWED).sort()).toEqual(PACKAGES);
    expect(sources.size).toBeGreaterThan(100);
    expect(all.filter((i) => tesseraEntry(i.specifier)).length).toBeGreaterThan(50);
  });

  it('each package imports only the Tessera entry points it may', () => {
    const violations = all
      .filter((i) => tesseraEntry(i.specifier) && !ALLOWED[packageOf(i.from)]!.test(i.specifier))
      .map((i) => `${i.from} imports ${i.specifier}`);
    expect(violations).toEqual([]);
  });

  it('no relative import leaves its package (another package only through its exports)', () => {
    const violations = all
      .filter((i) => i.specifier.startsWith('.'))
      .filter((i) => {
        const target = relative(ROOT, resolve(ROOT, dirname(i.from), i.specifier));
        return !target.startsWith(`packages/${packageOf(i.from)}/src/`);
      })
      .map((i) => `${i.from} imports ${i.specifier}`);
    expect(violations).toEqual([]);
  });

  it('every Tessera entry point imported is one its package exports', () => {
    const exported = new Set<string>();
    for (const name of PACKAGES) {
      const manifest = JSON.parse(readFileSync(join(ROOT, 'packages', name, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
      for (const key of Object.keys(manifest.exports)) exported.add(key === '.' ? manifest.name : `${manifest.name}/${key.slice(2)}`);
    }
    const unknown = all.filter((i) => tesseraEntry(i.specifier) && !exported.has(i.specifier)).map((i) => `${i.from} imports ${i.specifier}`);
    expect(unknown).toEqual([]);
  });

  it('no import cycles between files (type-only and lazy imports aside)', () => {
    const edges = new Map<string, string[]>();
    for (const [file, imports] of sources) {
      edges.set(
        file,
        imports.filter((i) => i.specifier.startsWith('.') && !i.typeOnly && !i.dynamic).map((i) => relative(ROOT, resolve(ROOT, dirname(file), i.specifier))),
      );
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const walk = (file: string) => {
      state.set(file, 'open');
      stack.push(file);
      for (const next of edges.get(file) ?? []) {
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' -> '));
        else if (!state.has(next)) walk(next);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of edges.keys()) if (!state.has(file)) walk(file);
    expect(cycles).toEqual([]);
  });

  it("core's main entry point loads no plotting code and no queue: Vega, resvg, BullMQ and ioredis stay behind their own entry points", () => {
    // Every file core's index reaches through static, non-type imports.
    const reached = new Set<string>();
    const external = new Set<string>();
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const i of sources.get(file) ?? []) {
        if (i.typeOnly || i.dynamic) continue;
        if (i.specifier.startsWith('.')) visit(relative(ROOT, resolve(ROOT, dirname(file), i.specifier)));
        else external.add(i.specifier);
      }
    };
    visit('packages/core/src/index.ts');
    expect(reached.has('packages/core/src/tracking/plots.ts')).toBe(false);
    expect([...external].filter((name) => /^(vega|vega-lite|@resvg\/resvg-js|bullmq|ioredis)$/.test(name))).toEqual([]);
    // The queue's dependencies belong to @tessera/sweeps alone.
    const queueUsers = all.filter((i) => /^(bullmq|ioredis)$/.test(i.specifier)).map((i) => packageOf(i.from));
    expect(new Set(queueUsers)).toEqual(new Set(['sweeps']));
  });
  it('one validator: only the schema module of core imports ajv', () => {
    const users = all.filter((i) => i.specifier === 'ajv' || i.specifier.startsWith('ajv/')).map((i) => i.from);
    expect([...new Set(users)]).toEqual(['packages/core/src/schema/validate.ts']);
  });

  it('core never ends the process (no process.exit): a signal becomes an abort, and the caller decides', () => {
    const exits: string[] = [];
    for (const file of sources.keys()) {
      if (packageOf(file) !== 'core') continue;
      const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node) => {
        if (ts.isPropertyAccessExpression(node) && node.name.text === 'exit' && node.expression.getText() === 'process') {
          exits.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(sources.size).toBeGreaterThan(100);
    expect(exits).toEqual([]);
  });

  it("every index.ts names what it offers; core's main entry only gathers its folders' curated lists", () => {
    const barrels: string[] = [];
    const indexes = [...sources.keys()].filter((file) => file.endsWith('/index.ts'));
    for (const file of indexes) {
      const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
      for (const statement of source.statements) {
        if (!ts.isExportDeclaration(statement) || statement.exportClause || !statement.moduleSpecifier) continue;
        const target = (statement.moduleSpecifier as ts.StringLiteral).text;
        // The one allowed form: core's index re-exporting a folder's index (itself checked here).
        if (file === 'packages/core/src/index.ts' && /^\.\/[a-z]+\/index\.ts$/.test(target)) continue;
        barrels.push(`${file}: export * from '${target}'`);
      }
    }
    expect(indexes.length).toBeGreaterThan(15);
    expect(barrels).toEqual([]);
  });
});
