package io.modelship.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.mlflow.api.proto.Service.Experiment;
import org.mlflow.api.proto.Service.Metric;
import org.mlflow.api.proto.Service.Param;
import org.mlflow.api.proto.Service.Run;
import org.mlflow.api.proto.Service.RunInfo;
import org.mlflow.api.proto.Service.RunStatus;
import org.mlflow.api.proto.Service.RunTag;
import org.mlflow.tracking.MlflowClient;

/**
 * What a Java training job does with MLflow's own Java client, against the server named by
 * MLFLOW_TRACKING_URI: an experiment and a run, params, metrics with steps, tags, a batch,
 * then a search and the metric history read back.
 */
class MlflowJavaClientTest {

  private static MlflowClient client() {
    String uri = System.getenv("MLFLOW_TRACKING_URI");
    assertNotNull(uri, "MLFLOW_TRACKING_URI must name the tracking server under test");
    return new MlflowClient(uri);
  }

  @Test
  void logsAndReadsBackARun() {
    MlflowClient client = client();
    String name = System.getenv().getOrDefault("MODELSHIP_JAVA_EXPERIMENT", "java-" + UUID.randomUUID());
    String experimentId = client.createExperiment(name);
    Experiment experiment = client.getExperimentByName(name).orElseThrow();
    assertEquals(experimentId, experiment.getExperimentId());
    assertEquals(name, client.getExperiment(experimentId).getName());

    RunInfo info = client.createRun(experimentId);
    String runId = info.getRunId();
    assertEquals(RunStatus.RUNNING, info.getStatus());

    client.logParam(runId, "alpha", "0.5");
    client.setTag(runId, "team", "modelship");
    long start = System.currentTimeMillis();
    for (int step = 0; step < 5; step++) {
      client.logMetric(runId, "loss", 1.0 / (step + 1), start + step, step);
    }
    List<Metric> batch = new ArrayList<>();
    for (int step = 0; step < 3; step++) {
      batch.add(
          Metric.newBuilder()
              .setKey("accuracy")
              .setValue(0.5 + step * 0.1)
              .setTimestamp(start + step)
              .setStep(step)
              .build());
    }
    client.logBatch(
        runId,
        batch,
        List.of(Param.newBuilder().setKey("layers").setValue("3").build()),
        List.of(RunTag.newBuilder().setKey("stage").setValue("batch").build()));
    client.setTerminated(runId, RunStatus.FINISHED);

    Run run = client.getRun(runId);
    assertEquals(RunStatus.FINISHED, run.getInfo().getStatus());
    Map<String, String> params =
        run.getData().getParamsList().stream().collect(Collectors.toMap(Param::getKey, Param::getValue));
    assertEquals(Map.of("alpha", "0.5", "layers", "3"), params);
    Map<String, String> tags =
        run.getData().getTagsList().stream().collect(Collectors.toMap(RunTag::getKey, RunTag::getValue));
    assertEquals("modelship", tags.get("team"));
    assertEquals("batch", tags.get("stage"));
    Map<String, Double> latest =
        run.getData().getMetricsList().stream().collect(Collectors.toMap(Metric::getKey, Metric::getValue));
    assertEquals(0.2, latest.get("loss"), 1e-12);
    assertEquals(0.7, latest.get("accuracy"), 1e-12);

    List<Metric> history = client.getMetricHistory(runId, "loss");
    assertEquals(List.of(0L, 1L, 2L, 3L, 4L), history.stream().map(Metric::getStep).collect(Collectors.toList()));
    assertEquals(1.0, history.get(0).getValue(), 1e-12);
    assertEquals(0.25, history.get(3).getValue(), 1e-12);

    List<RunInfo> found = client.searchRuns(List.of(experimentId), "params.alpha = '0.5' and metrics.loss < 0.3");
    assertEquals(List.of(runId), found.stream().map(RunInfo::getRunId).collect(Collectors.toList()));
    assertTrue(client.searchRuns(List.of(experimentId), "params.alpha = '0.9'").isEmpty());
    assertFalse(client.searchRuns(List.of(experimentId), "tags.team LIKE 'model%'").isEmpty());
  }
}
