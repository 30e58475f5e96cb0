"""Print pip constraints that pin every dependency of pyproject.toml to its declared lower bound
(``name>=X`` -> ``name==X``), for the CI step that installs the floors and runs the fast tests."""
import re
import sys
import tomllib

with open(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml", "rb") as f:
    deps = tomllib.load(f)["project"]["dependencies"]
for dep in deps:
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", dep)
    if m:
        print(f"{m.group(1)}=={m.group(3)}")
