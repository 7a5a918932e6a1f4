// Inlined into index.html by build.mjs and run before the bundle loads: the runs table's first
// search leaves at once (firstpage.ts), and a run or comparison page's chunks (uPlot's
// included, loaded by the bundle only when it shows that page) are fetched beside the bundle.
import { startFirstSearch } from "./firstpage";
import { currentRoute } from "./hash";

/** The chunks of each lazily loaded page, named by build.mjs. */
declare const __PAGE_CHUNKS__: { run: string[]; compare: string[] };

startFirstSearch();
const { path } = currentRoute();
const page = path[0] === "runs" || (path[0] === "experiments" && path[2] === "runs" && path[3]) ? "run" : path[0] === "compare" ? "compare" : null;
for (const name of page ? __PAGE_CHUNKS__[page] : []) {
  const link = document.createElement("link");
  link.rel = "modulepreload";
  link.href = "/ui/" + name;
  document.head.appendChild(link);
}
