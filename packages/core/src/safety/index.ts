export { redactSecrets, isSecretKey, MASK } from './redact.ts';
export { assertSafeName, containedJoin, unsafeNameReason, SAFE_NAME_PATTERN, UnsafePathError } from './paths.ts';
export { copyFileAtomic, writeFileAtomic, writeJsonAtomic } from './atomic-write.ts';
