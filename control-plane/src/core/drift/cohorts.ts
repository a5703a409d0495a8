/**
 * Cohorts: groups of devices scored together. A cohort is one value of a
 * device tag (`KEY=VALUE`, the tag keys are `DriftPolicy.cohortTags`), and
 * the whole fleet is the cohort `*`. The tags are those the device had when
 * its flush arrived, so re-tagging a device moves its later flushes only.
 */

/** The whole fleet. */
export const FLEET_COHORT = '*';

/** The cohorts a flush from a device with `tags` counts in: `*` first, then one per cohort tag it has. */
export function cohortsOf(
  tags: Readonly<Record<string, string>>,
  cohortTags: readonly string[],
): string[] {
  const cohorts = [FLEET_COHORT];
  for (const key of cohortTags) {
    const value = tags[key];
    if (value !== undefined) cohorts.push(`${key}=${value}`);
  }
  return cohorts;
}

/** Whether `text` names a cohort: `*` or `KEY=VALUE` with a non-empty key. */
export function isCohortName(text: string): boolean {
  return text === FLEET_COHORT || text.indexOf('=') > 0;
}
