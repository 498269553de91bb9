import json
import subprocess

subprocess.run(["sh", "-c", "llvm-readelf-22 -h x.o | grep -q AMDGPU"])
