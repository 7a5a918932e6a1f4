package io.modelship.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.mlflow.api.proto.ModelRegistry.ModelVersion;
import org.mlflow.api.proto.ModelRegistry.RegisteredModel;
import org.mlflow.tracking.MlflowClient;

/**
 * A Java serving job reads a registered model with MLflow's own Java client: the model, its
 * latest Production version, one version, the download URI and a search. The model is
 * registered beforehand through the Python client (registry writes onto Kubernetes objects),
 * by tests/e2e/test_registry_java.py, which runs this class alone with
 * {@code -Dtest=MlflowJavaRegistryIT} (an *IT class: a plain {@code mvn test} does not pick it
 * up, since it needs a server with cluster access and that model).
 */
class MlflowJavaRegistryIT {

  private static String env(String name) {
    String value = System.getenv(name);
    assertNotNull(value, name + " must be set by tests/e2e/test_registry_java.py");
    return value;
  }

  @Test
  void readsARegisteredModel() {
    MlflowClient client = new MlflowClient(env("MLFLOW_TRACKING_URI"));
    String name = env("MODELSHIP_REGISTERED_MODEL");

    RegisteredModel model = client.getRegisteredModel(name);
    assertEquals(name, model.getName());
    assertEquals("Registered through mlflow, read from Java.", model.getDescription());

    List<ModelVersion> production = client.getLatestVersions(name, List.of("Production"));
    assertEquals(List.of("2"), production.stream().map(ModelVersion::getVersion).collect(Collectors.toList()));
    assertEquals("Production", production.get(0).getCurrentStage());

    ModelVersion first = client.getModelVersion(name, "1");
    assertEquals("Archived", first.getCurrentStage());
    assertEquals(env("MODELSHIP_RUN_ID"), first.getRunId());

    String uri = client.getModelVersionDownloadUri(name, "2");
    assertTrue(uri.endsWith("/artifacts/model"), uri);

    List<String> versions =
        client.searchModelVersions("name = '" + name + "'").getItems().stream()
            .map(ModelVersion::getVersion)
            .sorted()
            .collect(Collectors.toList());
    assertEquals(List.of("1", "2"), versions);
  }
}
