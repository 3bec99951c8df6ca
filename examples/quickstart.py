"""The README's main job: the quickstart, then a chart saved to a PNG."""

import base64
from pathlib import Path

from nullspace import Sandbox

with Sandbox.create(template="code-interpreter", timeout=120) as sandbox:
    execution = sandbox.run_code("x = 40 + 2\nx")
    print(execution.results[0].text)

    chart = sandbox.run_code(
        """
import matplotlib.pyplot as plt
import numpy as np
t = np.linspace(0, 2 * np.pi, 200)
plt.plot(t, np.sin(t), label="sin")
plt.plot(t, np.cos(t), label="cos")
plt.title("nullspace")
plt.legend()
plt.show()
"""
    )
    png = next(r.png for r in chart.results if r.png)
    out = Path("chart.png")
    out.write_bytes(base64.b64decode(png))
    print(f"chart saved to {out.resolve()} ({out.stat().st_size} bytes)")
