import { setOwn } from '../config/plain.ts';

/**
 * The ONE redaction function of Tessera. Everything a run writes or prints passes through it:
 * CLI output and errors, `exp config`, params, tags, meta.json, config.json/config.yaml,
 * overrides, and so whatever reaches MLflow. What it masks:
 *  - the user info of a URI: `http://user:SECRET@host` -> `http://user:****@host`, and a bare
 *    token `https://TOKEN@host` -> `https://****@host`;
 *  - `name=value` pairs whose name says secret, in URI queries (`?token=...`) and in `--set`
 *    arguments (`tracking.tags.api_token=...`), `"name": "value"` in JSON text and
 *    `name: value` in YAML text (`--set tracking.tags={api_token: x}`);
 *  - in objects, the value of every key whose name says secret (`password`, `api_token`, ...).
 * A secret a run needs (an MLflow password) comes from the environment (MLFLOW_TRACKING_PASSWORD),
 * never from a recorded config, so masking never loses what a resumed run needs.
 */
export const MASK = '****';

/** Key names that hold secrets. `author` or `tokenizer_size` are not secrets; `api_token` is. */
export const SECRET_KEY = /(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization)/i;

const NAME = String.raw`[\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization)[\w.-]*`;
const USER_AND_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^/\s@]+@/gi;
const TOKEN_AS_USER = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+@/gi;
const ASSIGNMENT = new RegExp(`(${NAME})=([^\\s&#"',;]+)`, 'gi');
const JSON_MEMBER = new RegExp(`("${NAME}"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi');
// `api_token: value` in YAML text, e.g. a flow mapping in `--set tracking.tags={api_token: x}`.
const YAML_MEMBER = new RegExp(`(^|[\\s{,])(${NAME})(\\s*:\\s+)("[^"]*"|'[^']*'|[^\\s,}\\]]+)`, 'gim');

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function redactText(text: string): string {
  if (!text.includes('://') && !text.includes('=') && !text.includes('"') && !text.includes(':')) return text;
  return text
    .replace(USER_AND_PASSWORD, `$1${MASK}@`)
    .replace(TOKEN_AS_USER, `$1${MASK}@`)
    .replace(ASSIGNMENT, `$1=${MASK}`)
    .replace(JSON_MEMBER, `$1"${MASK}"`)
    // Quoted: `****` alone would read as a YAML alias.
    .replace(YAML_MEMBER, `$1$2$3"${MASK}"`);
}

/**
 * A copy with secrets masked (see above); strings, lists and plain objects are walked, anything
 * else is returned as is. A secret-named key keeps its key and loses its value (`'****'`).
 */
export function redactSecrets<T>(value: T): T {
  const walk = (item: unknown, secretKey: boolean): unknown => {
    if (typeof item === 'string') return secretKey && item !== '' ? MASK : redactText(item);
    if (Array.isArray(item)) return item.map((x) => walk(x, secretKey));
    if (isPlainObject(item)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(item as Record<string, unknown>)) {
        const secret = secretKey || SECRET_KEY.test(k);
        const masked = secret && v !== null && v !== undefined && typeof v !== 'object' ? MASK : walk(v, secret);
        setOwn(out, redactText(k), masked);
      }
      return out;
    }
    if ((typeof item === 'number' || typeof item === 'boolean') && secretKey) return MASK;
    return item;
  };
  return walk(value, false) as T;
}
