// The runs table of one experiment: rows and columns virtualised (only what is on screen is
// in the DOM), runs loaded page by page in the background, sort and filter by the server
// in MLflow's search syntax, min/max metric columns from the server's extremes endpoint.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { countRuns, getExperiment, metricExtremes, searchTableRuns, type Experiment } from "../api";
import {
  attributeColumns,
  cellText,
  compareRows,
  decodeColumns,
  encodeColumns,
  metricId,
  parseColumn,
  type Agg,
  type Column,
  type Extremes,
} from "../columns";
import { FIRST_PAGE, ROW, startFirstSearch, tableOrder } from "../firstpage";
import { tableRow, type RunRow } from "../format";
import { currentRoute, href, setQuery, type Route } from "../route";

const COL = 140;
const FROZEN = 34 + 240; // selection box + run name
const PAGE = 2000;
const MAX_ROWS = 100_000;
const DEFAULT_KEYS = 30; // default columns per kind; the chooser has every key
const AHEAD = 10; // rows loaded beyond the last one shown

interface Load {
  rows: RunRow[];
  /** How many runs the search finds (null until the server says). */
  count: number | null;
  done: boolean;
  busy: boolean;
  error: string;
  /** The rows are the previous search's, kept on screen until the new search's first page comes. */
  stale: boolean;
}

interface Loader {
  experimentId: string;
  filter: string;
  rows: RunRow[];
  /** How many runs the filter finds: known at once for a new order of the same runs. */
  count: number | null;
  token?: string;
  done: boolean;
  busy: boolean;
  abort: AbortController;
}

const EMPTY: Load = { rows: [], count: null, done: false, busy: true, error: "", stale: false };

/** The runs of a search, a page at a time, as far as ``want`` rows: the first page (a screenful)
 * at once, then pages of 2,000 only as the table is scrolled towards them (or all of them,
 * when the browser sorts). Nothing loads while the user only looks, so a sort or a filter
 * never waits behind a page nobody asked for. On a new sort or filter the rows shown stay
 * until the new first page replaces them (marked stale): no empty frame between, and the
 * rows' elements are reused, not made again. */
function useRuns(experimentId: string, filter: string, order: string | null, want: number): Load {
  const [load, setLoad] = useState<Load>(EMPTY);
  const loader = useRef<Loader | null>(null);
  const wanted = useRef(want);
  wanted.current = want;
  const pump = () => {
    const l = loader.current;
    if (!l || l.busy || l.done || l.rows.length >= Math.min(wanted.current, MAX_ROWS)) return;
    l.busy = true;
    setLoad((s) => ({ ...s, busy: true }));
    const size = l.rows.length ? PAGE : FIRST_PAGE;
    searchTableRuns([experimentId], filter, order ? [order] : [], size, l.token, l.abort.signal).then(
      (r) => {
        if (loader.current !== l) return;
        const first = !l.rows.length;
        l.rows = l.rows.concat((r.runs || []).map(tableRow));
        l.token = r.next_page_token;
        l.done = !l.token;
        l.busy = false;
        if (l.done) l.count = l.rows.length;
        setLoad((s) => ({ ...s, rows: l.rows, done: l.done, busy: false, stale: false, count: l.count }));
        if (first && l.count === null)
          countRuns([experimentId], filter, l.abort.signal).then(
            (count) => {
              if (loader.current !== l) return;
              l.count = count;
              setLoad((s) => ({ ...s, count }));
            },
            () => undefined,
          );
        pump();
      },
      (e) => {
        if (l.abort.signal.aborted) return;
        l.busy = false;
        l.done = true;
        l.count = l.rows.length;
        setLoad((s) => ({ ...s, rows: l.rows, done: true, busy: false, stale: false, count: l.count, error: (e as Error).message }));
      },
    );
  };
  // A layout effect: the first search goes out (or the boot script's answer is taken) before
  // the first paint, not a frame after it.
  useLayoutEffect(() => {
    const before = loader.current;
    const sameExperiment = before !== null && before.experimentId === experimentId;
    // Another order of the same runs: their count cannot change, so it is not asked again.
    const count = sameExperiment && before.filter === filter ? before.count : null;
    const l: Loader = { experimentId, filter, rows: [], count, done: false, busy: false, abort: new AbortController() };
    loader.current = l;
    setLoad((s) => (sameExperiment && s.rows.length ? { ...s, busy: true, error: "", stale: true } : EMPTY));
    pump();
    return () => l.abort.abort();
  }, [experimentId, filter, order]);
  useEffect(pump, [want]);
  return load;
}

function useExtremes(experimentId: string, columns: Column[], rowsLoaded: boolean): Extremes {
  const keys = [...new Set(columns.filter((c) => c.kind === "m" && c.agg !== "last").map((c) => c.key))].sort().join("\n");
  const [extremes, setExtremes] = useState<Extremes>({});
  useEffect(() => {
    if (!keys) return;
    const abort = new AbortController();
    metricExtremes(experimentId, keys.split("\n"), abort.signal).then(setExtremes, () => undefined);
    return () => abort.abort();
  }, [experimentId, keys, rowsLoaded]);
  return extremes;
}

function defaultColumns(rows: RunRow[]): Column[] {
  const params = new Set<string>();
  const metrics = new Set<string>();
  for (const r of rows.slice(0, 200)) {
    Object.keys(r.params).forEach((k) => params.add(k));
    Object.keys(r.metrics).forEach((k) => metrics.add(k));
  }
  return [
    ...attributeColumns().slice(0, 3),
    ...[...metrics].sort().slice(0, DEFAULT_KEYS).map((k) => parseColumn(metricId(k, "last"))!),
    ...[...params].sort().slice(0, DEFAULT_KEYS).map((k) => parseColumn("p:" + k)!),
  ];
}

/** Change the table's URL; when that changes its search, the search leaves now, ahead of the
 * page's render (the table takes its answer as it takes the boot script's: firstpage.ts). */
function changeSearch(changes: Record<string, string | undefined>, filter: string, order: string | null): void {
  setQuery(changes);
  const next = tableOrder(currentRoute().query);
  if (next.filter !== filter || next.order !== order) startFirstSearch();
}

export function RunsPage(props: { route: Route; experimentId: string }) {
  const q = props.route.query;
  const sort = q.get("sort") || ""; // "<column id> ASC|DESC"
  const { filter, sortColumn, sortDir, order } = tableOrder(q); // as the boot script reads them
  const selected = useMemo(() => new Set((q.get("sel") || "").split(",").filter(Boolean)), [q.get("sel")]);
  const [experiment, setExperiment] = useState<Experiment | null>(null);
  const [draft, setDraft] = useState(filter);
  const [chooser, setChooser] = useState(false);
  useEffect(() => void getExperiment(props.experimentId).then(setExperiment, () => undefined), [props.experimentId]);
  useEffect(() => setDraft(filter), [filter]);

  const [seen, setSeen] = useState(0); // the last row the table has shown
  const load = useRuns(props.experimentId, filter, order, sortColumn && !order ? MAX_ROWS : seen + AHEAD);

  const chosen = q.get("cols");
  const columns = useMemo(() => (chosen !== null ? decodeColumns(chosen) : defaultColumns(load.rows)), [chosen, load.rows.length > 0]);
  const extremes = useExtremes(props.experimentId, columns, load.done);
  const rows = useMemo(() => {
    if (!sortColumn || order) return load.rows;
    return [...load.rows].sort(compareRows(sortColumn, sortDir, extremes)); // min/max: sorted here
  }, [load.rows, sort, extremes]);

  const toggleSort = (c: Column) => changeSearch({ sort: `${c.id} ${sortColumn?.id === c.id && sortDir === "DESC" ? "ASC" : "DESC"}` }, filter, order);
  const toggle = (id: string) => {
    const next = new Set(selected);
    next.has(id) ? next.delete(id) : next.add(id);
    setQuery({ sel: [...next].join(",") });
  };

  return (
    <div class="page runs-page">
      <h1>
        <a href="#/">Experiments</a> / {experiment ? experiment.name : props.experimentId}
      </h1>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          changeSearch({ filter: draft.trim() || undefined }, filter, order);
        }}
      >
        <input
          class="filter"
          name="filter"
          placeholder="metrics.accuracy > 0.9 and params.model = 'tree'"
          value={draft}
          onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Filter</button>
        <button type="button" onClick={() => setChooser(!chooser)}>
          Columns ({columns.length})
        </button>
        <a class={"button" + (selected.size >= 2 ? "" : " disabled")} href={selected.size >= 2 ? href(["compare"], { runs: [...selected].join(",") }) : undefined}>
          Compare {selected.size} runs
        </a>
        {selected.size > 0 && (
          <button type="button" onClick={() => setQuery({ sel: undefined })}>
            Clear selection
          </button>
        )}
        <span class="count" data-testid="run-count">
          {load.count ?? rows.length} runs{load.busy || load.count === null ? " (loading…)" : ""}
        </span>
      </form>
      {load.error && <p class="error">{load.error}</p>}
      {chooser && <ColumnChooser rows={load.rows} columns={columns} />}
      <VirtualTable rows={rows} stale={load.stale} total={Math.max(load.count ?? 0, rows.length)} onSeen={setSeen} columns={columns} extremes={extremes} selected={selected} sort={sortColumn ? [sortColumn.id, sortDir] : null} onSort={toggleSort} onToggle={toggle} />
    </div>
  );
}

function ColumnChooser(props: { rows: RunRow[]; columns: Column[] }) {
  const [search, setSearch] = useState("");
  const keys = useMemo(() => {
    const p = new Set<string>();
    const m = new Set<string>();
    const t = new Set<string>();
    for (const r of props.rows) {
      for (const k in r.params) p.add(k);
      for (const k in r.metrics) m.add(k);
      for (const k in r.tags) t.add(k);
    }
    return { p: [...p].sort(), m: [...m].sort(), t: [...t].sort() };
  }, [props.rows.length]);
  const ids = props.columns.map((c) => c.id);
  const save = (next: string[]) => setQuery({ cols: encodeColumns(next) });
  const has = (id: string) => ids.includes(id);
  const flip = (id: string) => save(has(id) ? ids.filter((x) => x !== id) : [...ids, id]);
  const match = (k: string) => k.toLowerCase().includes(search.toLowerCase());
  const metricAgg = (k: string): Agg | "" => (["last", "min", "max"] as Agg[]).find((a) => has(metricId(k, a))) || "";
  const setAgg = (k: string, agg: string) => {
    const without = ids.filter((x) => !(x.startsWith("m:") && parseColumn(x)?.key === k));
    save(agg ? [...without, metricId(k, agg as Agg)] : without);
  };
  return (
    <div class="chooser" data-testid="column-chooser">
      <input placeholder="search keys" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
      <button type="button" onClick={() => setQuery({ cols: undefined })}>
        Default columns
      </button>
      <div class="chooser-groups">
        <fieldset>
          <legend>Attributes</legend>
          {attributeColumns().map((c) => (
            <label>
              <input type="checkbox" checked={has(c.id)} onChange={() => flip(c.id)} /> {c.title}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Metrics</legend>
          {keys.m.filter(match).slice(0, 500).map((k) => (
            <label>
              <select value={metricAgg(k)} onChange={(e) => setAgg(k, (e.target as HTMLSelectElement).value)}>
                <option value="">hidden</option>
                <option value="last">last</option>
                <option value="min">min</option>
                <option value="max">max</option>
              </select>{" "}
              {k}
            </label>
          ))}
        </fieldset>
        {(["p", "t"] as const).map((kind) => (
          <fieldset>
            <legend>{kind === "p" ? "Params" : "Tags"}</legend>
            {keys[kind].filter(match).slice(0, 500).map((k) => (
              <label>
                <input type="checkbox" checked={has(`${kind}:${k}`)} onChange={() => flip(`${kind}:${k}`)} /> {k}
              </label>
            ))}
          </fieldset>
        ))}
      </div>
    </div>
  );
}

function VirtualTable(props: {
  rows: RunRow[];
  /** The rows are the previous search's (a new one is loading). */
  stale: boolean;
  /** Rows the scroll bar is sized for: the search's count, loaded or not. */
  total: number;
  onSeen: (lastRow: number) => void;
  columns: Column[];
  extremes: Extremes;
  selected: Set<string>;
  sort: [string, string] | null;
  onSort: (c: Column) => void;
  onToggle: (id: string) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, left: 0, height: 600, width: 1200 });
  useEffect(() => {
    const el = box.current!;
    let frame = 0;
    const measure = () => {
      frame = 0;
      setView({ top: el.scrollTop, left: el.scrollLeft, height: el.clientHeight, width: el.clientWidth });
    };
    const onScroll = () => (frame ||= requestAnimationFrame(measure));
    el.addEventListener("scroll", onScroll, { passive: true });
    const resize = new ResizeObserver(measure);
    resize.observe(el);
    return () => {
      el.removeEventListener("scroll", onScroll);
      resize.disconnect();
      cancelAnimationFrame(frame);
    };
  }, []);
  const { rows, columns } = props;
  const firstRow = Math.max(0, Math.floor(view.top / ROW) - 5);
  const lastShown = Math.ceil((view.top + view.height) / ROW) + 5;
  const lastRow = Math.min(rows.length, lastShown);
  useEffect(() => props.onSeen(lastShown), [lastShown]);
  const firstCol = Math.max(0, Math.floor(view.left / COL) - 2);
  const lastCol = Math.min(columns.length, Math.ceil((view.left + view.width - FROZEN) / COL) + 2);
  const visible = columns.slice(firstCol, lastCol);
  const width = FROZEN + columns.length * COL;
  const arrow = (c: Column) => (props.sort && props.sort[0] === c.id ? (props.sort[1] === "ASC" ? " ▲" : " ▼") : "");
  return (
    <div class="table" ref={box} role="table" data-testid="runs-table" aria-busy={props.stale}>
      <div class="thead" style={{ width: width + "px" }} role="row">
        <div class="frozen">
          <span class="sel" />
          <span class="name">Run</span>
        </div>
        <span style={{ width: firstCol * COL + "px", flex: "none" }} />
        {visible.map((c) => (
          <span class="cell th" role="columnheader" title={c.title} onClick={() => props.onSort(c)}>
            {c.title + arrow(c)}
          </span>
        ))}
      </div>
      <div class="tbody" style={{ height: props.total * ROW + "px", width: width + "px" }}>
        {rows.slice(firstRow, lastRow).map((r, n) => (
          // Keyed by position: a new order or filter writes new text into the same elements.
          <div class="tr" role="row" key={firstRow + n} style={{ top: (firstRow + n) * ROW + "px", width: width + "px" }}>
            <div class="frozen">
              <span class="sel">
                <input type="checkbox" aria-label="select run" checked={props.selected.has(r.id)} onChange={() => props.onToggle(r.id)} />
              </span>
              <a class="name" href={href(["runs", r.id])} title={r.name}>
                {r.name}
              </a>
            </div>
            <span style={{ width: firstCol * COL + "px", flex: "none" }} />
            {visible.map((c) => {
              const text = cellText(c, r, props.extremes);
              return (
                <span class="cell" role="cell" title={text}>
                  {text}
                </span>
              );
            })}
          </div>
        ))}
      </div>
    </div>
  );
}
