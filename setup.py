"""What the wheel holds; the rest of the packaging is in pyproject.toml.

templates/, static/ and migrations/ stay at the top of the source tree; in the wheel they are
portal/templates/, portal/static/ and portal/migrations/, so an installed portal finds them in its
package (portal/app.py looks there first, then beside the package). Each folder and its sub-folders
are listed as packages mapped to the top-level folder, which is how setuptools installs files that
live outside the package's own directory; they are found here, so a new sub-folder needs no edit.
"""

from setuptools import find_namespace_packages, setup

CODE = ["portal", "portal.*", "admin", "admin.*", "search", "search.*", "staff", "staff.*"]
FOLDERS = ["templates", "static", "migrations"]
NOT_PACKAGES = ["__pycache__", "*.__pycache__"]

packages = find_namespace_packages(include=CODE, exclude=NOT_PACKAGES)
package_dir: dict[str, str] = {}
package_data: dict[str, list[str]] = {"portal.data": ["*"]}
for folder in FOLDERS:
    package_dir[f"portal.{folder}"] = folder
    for sub in ["", *find_namespace_packages(where=folder, exclude=NOT_PACKAGES)]:
        name = f"portal.{folder}" + (f".{sub}" if sub else "")
        packages.append(name)
        package_data[name] = ["*"]

setup(packages=packages, package_dir=package_dir, package_data=package_data)
