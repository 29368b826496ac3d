"""How much of numpynets runs between `numpynets train mlp` and the first
training step: the distinct files and functions of the package that are
called, traced with ``sys.setprofile``.

    PYTHONPATH=src python benchmarks/trace_train_path.py [extra train args]

A profile hook records every Python-level ``call`` event whose code lives in
``src/numpynets`` (module bodies, i.e. ``<module>`` code run by imports, are
counted separately; class bodies, comprehensions, generator expressions and
lambdas are not counted), starting at ``numpynets.cli.main`` and stopping at the
first call of an optimizer's ``step``. Data loading is included (it is on
the path), with ``--limit`` so that the trace is quick.
"""

import inspect
import os
import sys
import tempfile
from pathlib import Path

PKG = str(Path(__file__).resolve().parents[1] / "src" / "numpynets")
functions, files, modules = set(), set(), set()


def hook(frame, event, arg):
    if event != "call":
        return
    code = frame.f_code
    if not code.co_filename.startswith(PKG):
        return
    rel = os.path.relpath(code.co_filename, PKG)
    if code.co_name == "<module>":
        modules.add(rel)
        return
    if code.co_name == "step" and rel == os.path.join("optim", "optimizers.py"):
        sys.setprofile(None)
        print(f"files with a function called: {len(files)}")
        print(f"functions called:             {len(functions)}")
        print(f"modules imported (run):       {len(modules)}")
        for f in sorted(functions):
            print("  ", f)
        sys.stdout.flush()
        os._exit(0)
    if not code.co_flags & inspect.CO_OPTIMIZED or code.co_name.startswith("<"):
        return                                      # class bodies, comprehensions, lambdas
    files.add(rel)
    functions.add(f"{rel}:{code.co_firstlineno}:{code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}")


def main():
    out = tempfile.mkdtemp(prefix="trace-")
    argv = ["train", "mlp", "--limit", "1000", "--epochs", "1", "--threads", "1", "--no-progress",
            "--out", os.path.join(out, "run"), *sys.argv[1:]]
    sys.setprofile(hook)
    from numpynets.cli import main as cli_main

    cli_main(argv)
    sys.setprofile(None)
    print("the training finished without an optimizer step?")


if __name__ == "__main__":
    main()
