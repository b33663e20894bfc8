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

const SECRET_WORDS = new Set(['password', 'passwords', 'passwd', 'pwd', 'secret', 'secrets', 'token', 'credential', 'credentials', 'authorization', 'apikey', 'accesskey', 'privatekey']);
const SECRET_PAIRS = new Set(['api key', 'access key', 'private key', 'secret key', 'auth token']);

/**
 * True when a key names a secret: one of its words (split at `_ . - /`, spaces and camelCase) is
 * `password`, `secret`, `token`, `credential`, `authorization`, or it says `api key` / `apiKey` /
 * `access_key` / `private_key`. Words, not substrings: `num_tokens`, `tokenizer` and `author` are
 * not secrets; `api_token`, `db_password`, `X-Api-Key` and `clientSecret` are.
 */
export function isSecretKey(key: string): boolean {
  const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  return words.some((word, i) => SECRET_WORDS.has(word) || (i > 0 && SECRET_PAIRS.has(`${words[i - 1]} ${word}`)));
}

const NAME = String.raw`[\w.-]+`;
const USER_AND_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^/\s@]+@/gi;
const TOKEN_AS_USER = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+@/gi;
const ASSIGNMENT = new RegExp(`(${NAME})=([^\\s&#"',;]+)`, 'g');
const JSON_MEMBER = new RegExp(`"(${NAME})"(\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'g');
// `api_token: value` in YAML text, e.g. a flow mapping in `--set tracking.tags={api_token: x}`.
const YAML_MEMBER = new RegExp(`(^|[\\s{,])(${NAME})(\\s*:\\s+)("[^"]*"|'[^']*'|[^\\s,}\\]]+)`, 'gm');

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function redactText(text: string): string {
  if (!text.includes('://') && !text.includes('=') && !text.includes('"') && !text.includes(':')) return text;
  return (
    text
      .replace(USER_AND_PASSWORD, `$1${MASK}@`)
      .replace(TOKEN_AS_USER, `$1${MASK}@`)
      // A value may itself hold assignments (`--set description=https://h/?token=X`): a pair whose
      // name is not a secret keeps its name and has its value redacted in turn.
      .replace(ASSIGNMENT, (_all, name: string, value: string) => `${name}=${isSecretKey(name) ? MASK : redactText(value)}`)
      .replace(JSON_MEMBER, (all, name: string, colon: string) => (isSecretKey(name) ? `"${name}"${colon}"${MASK}"` : all))
      // Quoted: `****` alone would read as a YAML alias.
      .replace(YAML_MEMBER, (all, before: string, name: string, colon: string) => (isSecretKey(name) ? `${before}${name}${colon}"${MASK}"` : all))
  );
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
        const secret = secretKey || isSecretKey(k);
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
