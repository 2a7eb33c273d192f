/**
 * Sets a tag on a plain object. A key "__proto__" stays a tag (an own
 * property, as JSON.parse makes it) instead of reaching Object.prototype's
 * setter, which would change the object's prototype and drop the tag.
 */
export function setTag(tags: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') Object.defineProperty(tags, key, { value, enumerable: true, writable: true, configurable: true });
  else tags[key] = value;
}
