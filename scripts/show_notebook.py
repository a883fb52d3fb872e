"""Print what each cell of an executed notebook returned (plain-text views), for the quickstart job."""

from __future__ import annotations

import sys

import nbformat


def main(path: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    for number, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        print(f"\n[{number}] {cell.source.splitlines()[0] if cell.source else ''}")
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                text = output.text
            elif output.output_type == "error":
                text = f"{output.ename}: {output.evalue}"
            else:
                data = output.get("data", {})
                text = data.get("text/plain", "")
                if "image/png" in data:
                    text += f"\n(image/png, {len(data['image/png']) * 3 // 4} bytes)"
            if text.strip():
                print("    " + text.strip().replace("\n", "\n    "))
    print(f"\nexecuted notebook: {path}")


if __name__ == "__main__":
    main(sys.argv[1])
