import { useTime } from './time';

/** An instant shown as people read it in a table: "il y a 3 heures" with the exact date below. */
export function When({ at, exactOnNarrow = false }: { at: string; exactOnNarrow?: boolean }) {
  const f = useTime();
  return (
    <>
      <span className="cf-nowrap">{f.relative(at)}</span>
      <span className={`cf-sub cf-nowrap${exactOnNarrow ? '' : ' hide-narrow'}`}>{f.dateTime(at)}</span>
    </>
  );
}
