// The web UI of the Modelship tracking server: hash routes to read-only pages.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { render } from "preact";
import { ExperimentsPage } from "./pages/experiments";
import { RunsPage } from "./pages/runs";
import { RunPage } from "./pages/run";
import { ComparePage } from "./pages/compare";
import { ModelPage, ModelsPage } from "./pages/models";
import { KubeDeploymentsPage, KubeExperimentsPage } from "./pages/kube";
import { useRoute } from "./route";

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
