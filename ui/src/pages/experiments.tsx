// The experiments list, searched by name (MLflow's filter syntax underneath).
import { useEffect, useState } from "preact/hooks";
import { quote, searchExperiments, type Experiment } from "../api";
import { time, toMap } from "../format";
import { href, setQuery, type Route } from "../route";

export function ExperimentsPage(props: { route: Route }) {
  const search = props.route.query.get("q") || "";
  const [experiments, setExperiments] = useState<Experiment[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    setError("");
    const filter = search ? `name ILIKE ${quote("%" + search + "%")}` : "";
    searchExperiments(filter).then(setExperiments, (e) => setError(e.message));
  }, [search]);
  return (
    <div class="page">
      <h1>Experiments</h1>
      <div class="toolbar">
        <input
          class="filter"
          type="search"
          placeholder="search experiments by name"
          value={search}
          onInput={(e) => setQuery({ q: (e.target as HTMLInputElement).value || undefined })}
        />
        <span class="count">{experiments ? `${experiments.length} experiments` : "loading…"}</span>
      </div>
      {error && <p class="error">{error}</p>}
      <table class="grid" data-testid="experiments">
        <thead>
          <tr>
            <th>Name</th>
            <th>ID</th>
            <th>Description</th>
            <th>Last updated</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {(experiments || []).map((e) => (
            <tr key={e.experiment_id}>
              <td>
                <a href={href(["experiments", e.experiment_id])}>{e.name}</a>
              </td>
              <td>{e.experiment_id}</td>
              <td>{toMap(e.tags)["mlflow.note.content"] || ""}</td>
              <td>{time(e.last_update_time)}</td>
              <td>{time(e.creation_time)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
