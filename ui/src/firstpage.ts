// The runs table's first search, which the page's boot script (boot.ts, inlined in index.html)
// sends while the bundle is still loading and compiling: the first rows then need no round
// trip after the bundle. The table takes that answer when it asks for the same search.
import { parseColumn, serverOrder, type Column } from "./columns";
import { currentRoute } from "./hash";

export const ROW = 28;
// The first page: a screenful of rows and 20 more, no more, so that the first rows (and a
// sort's or a filter's) come fast: 53 runs on a 900-pixel window.
export const FIRST_PAGE = Math.max(50, Math.ceil(window.innerHeight / ROW) + 20);
export const TABLE_SEARCH = "/api/2.0/modelship/runs/table-search";

/** The runs table's search and sort, from its URL's query. */
export function tableOrder(q: URLSearchParams): { filter: string; sortColumn: Column | null; sortDir: "ASC" | "DESC"; order: string | null } {
  const sort = q.get("sort") || ""; // "<column id> ASC|DESC"
  const space = sort.lastIndexOf(" ");
  const sortColumn = sort ? parseColumn(sort.slice(0, space)) : null;
  const sortDir = sort.slice(space + 1) === "ASC" ? "ASC" : "DESC";
  return { filter: q.get("filter") || "", sortColumn, sortDir, order: sortColumn ? serverOrder(sortColumn, sortDir) : null };
}

/** The body of a runs/search (or the table's search) call, as the server gets it. */
export function searchBody(experimentIds: string[], filter: string, orderBy: string[], maxResults: number, pageToken: string | undefined): string {
  return JSON.stringify({ experiment_ids: experimentIds, filter: filter || undefined, order_by: orderBy, max_results: maxResults, page_token: pageToken });
}

/** An HTTP answer read whole. */
export interface Answer {
  ok: boolean;
  status: number;
  text: string;
}
export const readAnswer = (r: Response): Promise<Answer> => r.text().then((text) => ({ ok: r.ok, status: r.status, text }));

declare global {
  interface Window {
    /** The first search the boot script sent (its answer read as it arrives), until the table takes it. */
    __firstSearch?: { body: string; answer: Promise<Answer> };
  }
}

/** When the page shows a runs table, send the first search of the table its URL asks for now:
 * from the boot script as the page opens, and from a click that changes the table's sort or
 * filter, before the page re-renders. */
export function startFirstSearch(): void {
  const { path, query } = currentRoute();
  if (path[0] !== "experiments" || !path[1] || path[2] === "runs") return; // not the runs table
  const { filter, order } = tableOrder(query);
  const body = searchBody([path[1]], filter, order ? [order] : [], FIRST_PAGE, undefined);
  const answer = fetch(TABLE_SEARCH, { method: "POST", headers: { "Content-Type": "application/json" }, body }).then(readAnswer);
  answer.catch(() => undefined); // not unhandled: the table takes the failure as its own
  window.__firstSearch = { body, answer };
}

/** The boot script's answer to ``body``, once: null when it sent another search, or none. */
export function takeFirstSearch(body: string): Promise<Answer> | null {
  const first = window.__firstSearch;
  window.__firstSearch = undefined;
  return first && first.body === body ? first.answer : null;
}
