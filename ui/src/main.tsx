// The web UI of the Modelship tracking server: hash routes to read-only pages.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { render, type ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ExperimentsPage } from "./pages/experiments";
import { RunsPage } from "./pages/runs";
import { ModelPage, ModelsPage } from "./pages/models";
import { KubeDeploymentsPage, KubeExperimentsPage } from "./pages/kube";
import { useRoute } from "./route";

/** A page whose code (and uPlot's, half the bundle) is fetched when it is first shown, so
 * that the runs table, the page most opened first, compiles only what it needs. */
function lazy<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let page: ComponentType<P> | null = null;
  let loading: Promise<ComponentType<P>> | null = null;
  return (props: P) => {
    const [, loaded] = useState(0);
    useEffect(() => {
      if (page) return;
      (loading ||= load()).then((p) => {
        page = p;
        loaded((n) => n + 1);
      });
    }, []);
    const Page = page;
    return Page ? <Page {...props} /> : <p class="loading">Loading…</p>;
  };
}
const RunPage = lazy(() => import("./pages/run").then((m) => m.RunPage));
const ComparePage = lazy(() => import("./pages/compare").then((m) => m.ComparePage));

function App() {
  const route = useRoute();
  const [section, id, sub, subId] = route.path;
  let page;
  // MLflow's own links (#/experiments/<id>/runs/<run>), as the mlflow client prints them, work too.
  if (section === "experiments" && sub === "runs" && subId) page = <RunPage route={route} runId={subId} key={subId} />;
  else if (section === "experiments" && id) page = <RunsPage route={route} experimentId={id} key={id} />;
  else if (section === "runs" && id) page = <RunPage route={route} runId={id} key={id} />;
  else if (section === "compare") page = <ComparePage route={route} />;
  else if (section === "models" && id) page = <ModelPage name={id} key={id} />;
  else if (section === "models") page = <ModelsPage />;
  else if (section === "kube" && id === "deployments") page = <KubeDeploymentsPage />;
  else if (section === "kube") page = <KubeExperimentsPage />;
  else page = <ExperimentsPage route={route} />;
  return (
    <>
      <nav class="top">
        <a class="brand" href="#/">
          Modelship
        </a>
        <a href="#/" class={!section || section === "experiments" ? "active" : ""}>
          Experiments
        </a>
        <a href="#/models" class={section === "models" ? "active" : ""}>
          Models
        </a>
        <a href="#/kube/experiments" class={section === "kube" && id !== "deployments" ? "active" : ""}>
          Trials
        </a>
        <a href="#/kube/deployments" class={section === "kube" && id === "deployments" ? "active" : ""}>
          Deployments
        </a>
      </nav>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
