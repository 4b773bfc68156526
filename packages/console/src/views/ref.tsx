import { Fragment } from 'preact';
import { time, timeParts } from '../format.js';
import type { Names } from '../names.js';

/** A `node:<id>` or `command:<id>` as its name, linked to its page; anything else as text. */
export function Ref({ names, of, hint }: { names: Names; of: string; hint?: string | undefined }) {
  const named = names.of(of, hint);
  if (!named.href) return <span class="ref">{named.text}</span>;
  return (
    <a class="ref" href={named.href} title={named.action !== undefined ? `${named.action} ${of}` : of}>
      {named.action !== undefined && (
        <>
          <code>{named.action}</code>{' '}
        </>
      )}
      {named.action !== undefined ? <span class="short-id">{named.text}</span> : named.text}
    </a>
  );
}

/** A moment, as `format.time` words it; the exact UTC instant is the element's tooltip. */
export function When({ iso, now, stacked = false }: { iso: string; now?: number; stacked?: boolean }) {
  const parts = timeParts(iso, now);
  if (!stacked || !parts) {
    return (
      <time dateTime={iso} title={iso}>
        {time(iso, now)}
      </time>
    );
  }
  return (
    <time dateTime={iso} title={iso}>
      {parts.date && (
        <>
          <span class="date">{parts.date}</span>{' '}
        </>
      )}
      <span class="clock">
        {parts.clock} {parts.zone}
      </span>
    </time>
  );
}

/** A kind such as `security.superseded_certificate_used`, breakable only after `.` and `_`. */
export function Kind({ kind }: { kind: string }) {
  const parts = kind.split(/(?<=[._])/);
  return (
    <span class="kind">
      {parts.map((p, i) => (
        <Fragment key={p}>
          {i > 0 && <wbr />}
          {p}
        </Fragment>
      ))}
    </span>
  );
}
