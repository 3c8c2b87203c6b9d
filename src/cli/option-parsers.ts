import { InvalidArgumentError } from './commander.js';

// Option values checked as commander parses them, so a bad one is a usage error naming its flag.

/** A whole number of at least `min`: `--jobs 0` would push nothing and wait forever. */
export function wholeNumber(name: string, min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`${name} must be a whole number of at least ${min}`);
    return parsed;
  };
}

/** A whole number within [min, max], or a usage error naming the flag (cachix checks these when parsing). */
export function intInRange(name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max)
      throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return parsed;
  };
}

/** A repeatable option's values, in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A number of seconds, fractions allowed, at least 0 (cachix's --narinfo-batch-timeout 0.5). */
export function seconds(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0)
      throw new InvalidArgumentError(`${name} must be a number of seconds, 0 or more`);
    return parsed;
  };
}
