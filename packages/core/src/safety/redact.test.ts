import { describe, expect, it } from 'vitest';
import { redactSecrets } from './redact.ts';

describe('redactSecrets (the one redaction function)', () => {
  it('masks secret-named keys and URL passwords, nothing else', () => {
    expect(
      redactSecrets({
        tracking: { uri: 'https://alice:s3cret@mlflow.example.com/x', tags: { api_key: 'abc', team: 'vision', author: 'ann' } },
        token: 42,
        list: ['http://h/no-credentials', 'ftp://bob:pw@h/'],
        nested: { password: { user: 'u' } },
      }),
    ).toEqual({
      tracking: { uri: 'https://alice:****@mlflow.example.com/x', tags: { api_key: '****', team: 'vision', author: 'ann' } },
      token: '****',
      list: ['http://h/no-credentials', 'ftp://bob:****@h/'],
      nested: { password: { user: '****' } },
    });
  });

  it('masks a bare token as user info and secret query parameters', () => {
    expect(redactSecrets('https://ghp_abc123@host/x')).toBe('https://****@host/x');
    expect(redactSecrets('http://h:5000/api?token=abc&page=2&X-Api-Key=k')).toBe('http://h:5000/api?token=****&page=2&X-Api-Key=****');
  });

  it('masks --set arguments and JSON members that name a secret', () => {
    expect(redactSecrets(['tracking.tags.api_token=xyz', 'train.epochs=3'])).toEqual(['tracking.tags.api_token=****', 'train.epochs=3']);
    expect(redactSecrets('error: {"password":"p4ss","user":"u"}')).toBe('error: {"password":"****","user":"u"}');
    expect(redactSecrets('exp: --set tracking.uri=http://user:SECRET@host failed')).toBe('exp: --set tracking.uri=http://user:****@host failed');
  });

  it('masks a secret query parameter inside the value of a --set argument (no space before the URL)', () => {
    expect(redactSecrets('description=https://bob:PW@h.example.com/?token=TOK')).toBe('description=https://bob:****@h.example.com/?token=****');
    expect(redactSecrets(['data.url=http://h/x?page=2&api_key=K&sig=a=b'])).toEqual(['data.url=http://h/x?page=2&api_key=****&sig=a=b']);
    expect(redactSecrets('a=b=c')).toBe('a=b=c');
  });

  it('leaves non-secret values and non-plain objects untouched', () => {
    const date = new Date(0);
    expect(redactSecrets(date)).toBe(date);
    expect(redactSecrets({ lr: 0.1, name: 'x=1' })).toEqual({ lr: 0.1, name: 'x=1' });
  });
});

describe('redactSecrets in YAML text', () => {
  it('masks `secret_key: value` members of YAML flow and block text, not other keys or URLs', () => {
    expect(redactSecrets('tracking.tags={db_password: hunter2, team: vision}')).toBe('tracking.tags={db_password: "****", team: vision}');
    expect(redactSecrets('api_token: "abc def"\nname: x')).toBe('api_token: "****"\nname: x');
    expect(redactSecrets(redactSecrets('api_token: x'))).toBe('api_token: "****"');
    expect(redactSecrets('see http://h:5000/x and time: 12:30')).toBe('see http://h:5000/x and time: 12:30');
  });
});

describe('isSecretKey', () => {
  it('matches words that name a secret, not substrings', async () => {
    const { isSecretKey } = await import('./redact.ts');
    for (const key of ['password', 'db_password', 'api_token', 'apiKey', 'X-Api-Key', 'clientSecret', 'tracking.tags.access_key', 'AWS_SECRET_ACCESS_KEY', 'credentials']) {
      expect(isSecretKey(key), key).toBe(true);
    }
    for (const key of ['tokens', 'num_tokens', 'vars.tokens', 'tokenizer', 'author', 'key', 'keys', 'monkey', 'secretary_name']) {
      expect(isSecretKey(key), key).toBe(false);
    }
  });

  it('keeps error messages about a `tokens` variable readable', () => {
    expect(redactSecrets('vars.tokens: division by zero in "${64 // 0}"')).toBe('vars.tokens: division by zero in "${64 // 0}"');
    expect(redactSecrets({ vars: { tokens: 64 } })).toEqual({ vars: { tokens: 64 } });
  });
});
