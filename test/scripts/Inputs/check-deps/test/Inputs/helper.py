import json
import subprocess

import numpy

subprocess.run(["sh", "-c", "llvm-readelf-22 -h x.o | grep -q AMDGPU"])
