// Inlined into index.html by build.mjs and run before the bundle loads (see firstpage.ts).
import { startFirstSearch } from "./firstpage";

startFirstSearch();
