"""The wheel carries the firmware's C sources and the board files as package
data (tinyfake/_tree/, found by tinyfake.paths): an installed tinyfake
compiles, builds firmware and lists boards without a checkout."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
TREES = ("firmware", "boards")


class BuildWithTree(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads the checkout itself
            return
        for name in TREES:
            dest = Path(self.build_lib) / "tinyfake" / "_tree" / name
            shutil.rmtree(dest, ignore_errors=True)  # nothing stale from an earlier build
            shutil.copytree(HERE / name, dest, ignore=shutil.ignore_patterns("__pycache__", "build", "*.o", "*.elf"))


setup(cmdclass={"build_py": BuildWithTree})
