"""The Python packages the test and bench scripts need from PyPI, in one virtual environment
(`.build-bench-venv`, never committed): `require("pymysql", "PyMySQL")` returns when the module
imports; otherwise it installs the package there and runs the calling script again under that
environment's Python, with the same arguments."""
import importlib, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".build-bench-venv")


def require(module, package):
    try:
        importlib.import_module(module)
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin/python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin/pip"), "install", "-q", package], check=True)
    # Inside the environment already (its python may be a symlink to the system's, so the
    # prefix tells, not the executable's path): the new package imports here.
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        importlib.invalidate_caches()
        importlib.import_module(module)
        return
    os.execv(python, [python] + sys.argv)
