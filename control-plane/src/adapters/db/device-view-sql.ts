/**
 * The API's device view (`toDeviceView` in adapters/http/views.ts) rendered
 * by the database, for the device listing, the API's busiest route: the
 * database builds each row's JSON text and the control plane joins the texts
 * into the page, instead of mapping 19 columns a row into objects, converting
 * three timestamps and serializing the result again. Measured on a page of
 * 50 (bench/README.md), this is most of the control plane's CPU per listing.
 *
 * It must say what `toDeviceView` says for every row: device-view-sql.test.ts
 * holds the two to the same output over rows covering each branch (status,
 * model, labelled samples, null and sub-millisecond timestamps).
 */
import { sql, type SQL } from 'drizzle-orm';

/** An ISO 8601 UTC timestamp with milliseconds, as `Date.toISOString()` writes it. */
const iso = (column: string) =>
  `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** A text column holding something: `toDeviceView` tests these by truthiness. */
const filled = (column: string) => `coalesce(${column}, '') <> ''`;

/** The view of the row `alias` (a devices row or a subquery with its columns) as JSON text. */
export function deviceViewJson(alias: string): SQL<string> {
  const c = (column: string) => `"${alias}"."${column}"`;
  return sql<string>`${sql.raw(`json_build_object(
    'id', ${c('id')},
    'keyId', ${c('key_id')},
    'hardware', ${c('hardware')},
    'tags', ${c('tags')},
    'agentVersion', ${c('agent_version')},
    'status', case when ${c('revoked_at')} is not null then 'revoked'
                   when ${c('online')} then 'online' else 'offline' end,
    'enrolledAt', ${iso(c('enrolled_at'))},
    'lastSeenAt', ${iso(c('last_seen_at'))},
    'revokedAt', ${iso(c('revoked_at'))},
    'model', case when ${filled(c('model_name'))} and ${filled(c('model_version'))}
                   and ${c('model_release')} is not null and ${filled(c('bundle_id'))}
              then json_build_object('name', ${c('model_name')}, 'version', ${c('model_version')},
                                     'release', ${c('model_release')}, 'bundleId', ${c('bundle_id')})
              end,
    'updateState', ${c('update_state')},
    'labelledSamples', case when ${c('labelled_samples')} is not null
                             and ${c('labelled_samples_at')} is not null
                        then json_build_object('count', ${c('labelled_samples')},
                                               'at', ${iso(c('labelled_samples_at'))})
                        end
  )::text`)}`;
}
