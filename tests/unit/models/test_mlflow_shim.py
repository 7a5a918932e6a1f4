"""A model pickled against mlflow.pyfunc.PythonModel loads where mlflow is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_shim_registers_python_model_when_mlflow_is_absent(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules['mlflow'] = None  # make `import mlflow` fail, as on a slim image
        from modelship.models.python_model import PythonModel, install_mlflow_shim
        del sys.modules['mlflow']
        import builtins
        real_import = builtins.__import__
        def fake_import(name, *a, **k):
            if name == 'mlflow' or name.startswith('mlflow.'):
                if name not in sys.modules:
                    raise ImportError(name)
            return real_import(name, *a, **k)
        builtins.__import__ = fake_import
        install_mlflow_shim()
        import mlflow.pyfunc.model
        assert mlflow.pyfunc.model.PythonModel is PythonModel
        print('ok')
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
