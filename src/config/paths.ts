/** Same-origin relative path: one leading slash, no scheme, no `//` or `/\` (open-redirect tricks). */
export function isSafeRelativePath(value: string): boolean {
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return false;
  // Refusing control characters (header injection) is the point.
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return false;
  try {
    const base = new URL('https://bff.invalid');
    return new URL(value, base).origin === base.origin;
  } catch {
    return false;
  }
}
