import { useId, useLayoutEffect, useRef, useState, type PointerEvent } from 'react';
import './console-ui.css';

/**
 * Hand-written SVG charts (no chart library): a line/area chart of series over evenly spaced
 * categories (days), and a bar chart. Each is one `role="img"` with a descriptive `aria-label`
 * given by the caller (the numbers that matter, in words); axis labels come formatted by the
 * caller in the person's language. The SVG is drawn at the container's real width, so text
 * stays readable on a phone (fewer ticks, not smaller ones).
 */

export type Tone = 'primary' | 'accent' | 'ok';

export interface LineSeries {
  readonly name: string;
  /** One value per category (null: no value that day). */
  readonly values: readonly (number | null)[];
  readonly tone: Tone;
  readonly dashed?: boolean;
}

const FONT = 12;
const CHAR = 6.6; // average glyph width at 12px, for label room

/** The container's width in CSS pixels, measured before paint and kept up to date. */
function useWidth<T extends HTMLElement>(fallback = 640) {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(fallback);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => {
      const w = Math.floor(el.clientWidth);
      if (w > 0) setWidth((old) => (old === w ? old : w));
    };
    measure();
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return { ref, width };
}

/** 0 … a round maximum, in about `count` steps of 1, 2, 2.5 or 5 × 10^n. */
export function niceTicks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((s) => s * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks.length < 2) ticks.push(step);
  return ticks;
}

/**
 * Which category indices get an axis label: about evenly spaced, the last one always, and
 * none overlapping its neighbour (labels are `labelWidth` wide, anchored as `anchorOf` says).
 */
function labelIndices(n: number, room: number, labelWidth: number, xOf: (i: number) => number, anchorOf: (i: number) => 'start' | 'middle' | 'end'): number[] {
  if (n === 0) return [];
  const fit = Math.max(1, Math.floor(room / (labelWidth + 20)));
  const every = n <= fit ? 1 : Math.ceil((n - 1) / Math.max(1, fit - 1));
  const span = (i: number): [number, number] => {
    const x = xOf(i);
    const a = anchorOf(i);
    return a === 'start' ? [x, x + labelWidth] : a === 'end' ? [x - labelWidth, x] : [x - labelWidth / 2, x + labelWidth / 2];
  };
  const out: number[] = [];
  let leftEdge = Infinity;
  for (let i = n - 1; i >= 0; i -= every) {
    const [l, r] = span(i);
    if (r + 14 > leftEdge) continue;
    out.push(i);
    leftEdge = l;
  }
  return out.reverse();
}

function Legend({ items }: { items: readonly { name: string; tone: Tone; dashed?: boolean }[] }) {
  return (
    <ul className="cf-legend" aria-hidden="true">
      {items.map((s) => (
        <li key={s.name}>
          <span className={`cf-swatch ${s.tone}${s.dashed ? ' dashed' : ''}`} />
          {s.name}
        </li>
      ))}
    </ul>
  );
}

export function LineChart({
  label,
  categories,
  categoryLabel,
  series,
  formatValue,
  height = 240,
}: {
  /** The accessible description (what the chart shows and its key figures). */
  label: string;
  /** The x categories (e.g. day keys), evenly spaced. */
  categories: readonly string[];
  /** Short axis label of a category ("14 mars"). */
  categoryLabel: (c: string) => string;
  series: readonly LineSeries[];
  formatValue: (v: number) => string;
  height?: number;
}) {
  const { ref, width } = useWidth<HTMLDivElement>();
  const clipId = useId();
  const [hover, setHover] = useState<number | null>(null);
  const n = categories.length;
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1]!;
  const left = Math.ceil(Math.max(...ticks.map((t) => formatValue(t).length)) * CHAR) + 14;
  const right = 16;
  const padTop = 12;
  const bottom = 28;
  const plotW = Math.max(40, width - left - right);
  const plotH = height - padTop - bottom;
  const x = (i: number) => left + (n <= 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const y = (v: number) => padTop + plotH - (top === 0 ? 0 : (v / top) * plotH);
  const anchor = (i: number): 'start' | 'middle' | 'end' => (n > 1 && i === n - 1 ? 'end' : n > 1 && i === 0 ? 'start' : 'middle');
  const xLabels = labelIndices(n, plotW, Math.max(...categories.map((c) => categoryLabel(c).length), 4) * CHAR, x, anchor);

  const pathOf = (values: readonly (number | null)[]) => {
    let d = '';
    let pen = false;
    values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    return d;
  };
  const areaOf = (values: readonly (number | null)[]) => {
    const idx = values.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0);
    if (idx.length < 2) return '';
    const first = idx[0]!;
    const last = idx[idx.length - 1]!;
    return `${pathOf(values)}L${x(last).toFixed(1)},${y(0).toFixed(1)}L${x(first).toFixed(1)},${y(0).toFixed(1)}Z`;
  };

  const onMove = (e: PointerEvent<SVGSVGElement>) => {
    if (n === 0) return;
    const box = e.currentTarget.getBoundingClientRect();
    const px = e.clientX - box.left;
    const i = n <= 1 ? 0 : Math.round(((px - left) / plotW) * (n - 1));
    setHover(Math.min(n - 1, Math.max(0, i)));
  };

  const hovered = hover !== null && hover < n ? hover : null;
  return (
    <div className="cf-chart" ref={ref}>
      <Legend items={series} />
      <svg
        role="img"
        aria-label={label}
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        className="cf-svg"
        onPointerMove={onMove}
        onPointerLeave={() => setHover(null)}
      >
        <defs>
          <clipPath id={clipId}>
            <rect x={left} y={padTop - 2} width={plotW} height={plotH + 4} />
          </clipPath>
        </defs>
        {ticks.map((tv) => (
          <g key={tv}>
            <line className="cf-grid" x1={left} x2={left + plotW} y1={y(tv)} y2={y(tv)} />
            <text className="cf-axis" x={left - 8} y={y(tv)} dy="0.32em" textAnchor="end" fontSize={FONT}>
              {formatValue(tv)}
            </text>
          </g>
        ))}
        {xLabels.map((i) => (
          <text
            key={i}
            className="cf-axis"
            x={x(i)}
            y={padTop + plotH + 18}
            textAnchor={anchor(i)}
            fontSize={FONT}
          >
            {categoryLabel(categories[i]!)}
          </text>
        ))}
        <line className="cf-baseline" x1={left} x2={left + plotW} y1={y(0)} y2={y(0)} />
        <g clipPath={`url(#${clipId})`}>
          {series.map((s) => (
            <path key={`a-${s.name}`} className={`cf-area ${s.tone}`} d={areaOf(s.values)} />
          ))}
          {series.map((s) => (
            <path key={`l-${s.name}`} className={`cf-line ${s.tone}${s.dashed ? ' dashed' : ''}`} d={pathOf(s.values)} />
          ))}
        </g>
        {series.map((s) =>
          s.values.map((v, i) => {
            // Single values (no neighbour to draw a line to) get a dot, and so does the hovered day.
            const alone = v !== null && (s.values[i - 1] ?? null) === null && (s.values[i + 1] ?? null) === null;
            return v !== null && (alone || i === hovered) ? <circle key={`${s.name}-${i}`} className={`cf-dot ${s.tone}`} cx={x(i)} cy={y(v)} r={4} /> : null;
          }),
        )}
        {hovered !== null && <line className="cf-guide" x1={x(hovered)} x2={x(hovered)} y1={padTop} y2={padTop + plotH} />}
      </svg>
      <p className="cf-readout" aria-hidden="true">
        {hovered !== null
          ? `${categoryLabel(categories[hovered]!)} — ${series
              .map((s) => `${s.name} ${s.values[hovered] === null || s.values[hovered] === undefined ? '—' : formatValue(s.values[hovered]!)}`)
              .join(' · ')}`
          : '\u00a0'}
      </p>
    </div>
  );
}

export interface Bar {
  readonly key: string;
  /** Axis label under the bar ("14 mars"). */
  readonly label: string;
  readonly value: number;
  /** Tooltip text (full date, machine, size). */
  readonly title: string;
  readonly tone?: Tone;
}

export function BarChart({ label, bars, formatValue, height = 220 }: { label: string; bars: readonly Bar[]; formatValue: (v: number) => string; height?: number }) {
  const { ref, width } = useWidth<HTMLDivElement>();
  const [hover, setHover] = useState<number | null>(null);
  const n = bars.length;
  const max = Math.max(0, ...bars.map((b) => b.value));
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1]!;
  const left = Math.ceil(Math.max(...ticks.map((t) => formatValue(t).length)) * CHAR) + 14;
  const right = 8;
  const padTop = 12;
  const bottom = 28;
  const plotW = Math.max(40, width - left - right);
  const plotH = height - padTop - bottom;
  const slot = n === 0 ? plotW : plotW / n;
  const barW = Math.max(2, Math.min(36, slot * 0.7));
  const cx = (i: number) => left + slot * i + slot / 2;
  const y = (v: number) => padTop + plotH - (top === 0 ? 0 : (v / top) * plotH);
  const labelW = Math.max(...bars.map((b) => b.label.length), 4) * CHAR;
  // Centred under its bar, unless that would run past the chart's edges.
  const anchor = (i: number): 'start' | 'middle' | 'end' => (cx(i) + labelW / 2 > width ? 'end' : cx(i) - labelW / 2 < 0 ? 'start' : 'middle');
  const xLabels = labelIndices(n, plotW, labelW, cx, anchor);
  const hovered = hover !== null && hover < n ? bars[hover]! : null;
  return (
    <div className="cf-chart" ref={ref}>
      <svg role="img" aria-label={label} width={width} height={height} viewBox={`0 0 ${width} ${height}`} className="cf-svg" onPointerLeave={() => setHover(null)}>
        {ticks.map((tv) => (
          <g key={tv}>
            <line className="cf-grid" x1={left} x2={left + plotW} y1={y(tv)} y2={y(tv)} />
            <text className="cf-axis" x={left - 8} y={y(tv)} dy="0.32em" textAnchor="end" fontSize={FONT}>
              {formatValue(tv)}
            </text>
          </g>
        ))}
        {bars.map((b, i) => {
          const h = b.value > 0 ? Math.max(2, y(0) - y(b.value)) : 0;
          return (
            <g key={b.key} onPointerEnter={() => setHover(i)}>
              {/* A full-height transparent target makes small bars easy to point at. */}
              <rect className="cf-hit" x={cx(i) - slot / 2} y={padTop} width={slot} height={plotH} />
              <rect className={`cf-bar ${b.tone ?? 'primary'}${hover === i ? ' on' : ''}`} x={cx(i) - barW / 2} y={y(0) - h} width={barW} height={h} rx={Math.min(3, barW / 4)}>
                <title>{b.title}</title>
              </rect>
            </g>
          );
        })}
        <line className="cf-baseline" x1={left} x2={left + plotW} y1={y(0)} y2={y(0)} />
        {xLabels.map((i) => (
          <text key={i} className="cf-axis" x={anchor(i) === 'end' ? width - 2 : cx(i)} y={padTop + plotH + 18} textAnchor={anchor(i)} fontSize={FONT}>
            {bars[i]!.label}
          </text>
        ))}
      </svg>
      <p className="cf-readout" aria-hidden="true">
        {hovered ? hovered.title : '\u00a0'}
      </p>
    </div>
  );
}
