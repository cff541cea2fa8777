"""Packaging beyond what pyproject.toml can say: conf/ ships as the package precis.conf.

The top-level conf/ is what users read and edit in a checkout; the wheel carries the
same files as package data, so an installed precis resolves its defaults anywhere.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages("lib", include=["precis", "precis.*"], exclude=["*.__pycache__"]),
        "precis.conf",
    ],
    package_dir={"": "lib", "precis.conf": "conf"},
)
