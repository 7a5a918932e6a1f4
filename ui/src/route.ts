// Hash routes: #/path?query. All of a view's state lives in the query, so a URL shares a view.
import { useEffect, useState } from "preact/hooks";
import { currentRoute, type Route } from "./hash";

export { currentRoute, type Route };

export function href(path: string[], query?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v) q.set(k, v);
  const s = q.toString();
  return "#/" + path.map(encodeURIComponent).join("/") + (s ? "?" + s : "");
}

const listeners = new Set<() => void>();
window.addEventListener("hashchange", () => listeners.forEach((f) => f()));

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return route;
}

/** Change some query values of the current view without a new history entry. */
export function setQuery(changes: Record<string, string | undefined>): void {
  const { path, query } = currentRoute();
  for (const [k, v] of Object.entries(changes)) v ? query.set(k, v) : query.delete(k);
  const s = query.toString();
  history.replaceState(null, "", "#/" + path.map(encodeURIComponent).join("/") + (s ? "?" + s : ""));
  listeners.forEach((f) => f());
}
