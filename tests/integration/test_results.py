"""Every result format, end to end: MIME bundles → `Result` fields, in order, with the whole
bundle in `result.data`; DataFrames as Table Schema; PIL images as PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest

from nullspace import Sandbox

TABLE_MIME = "application/vnd.dataresource+json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sbx(server) -> Iterator[Sandbox]:  # noqa: ANN001
    with Sandbox.create(timeout=600) as sandbox:
        yield sandbox


def test_every_mime_type_maps_to_its_field(sbx: Sandbox) -> None:
    code = r"""
from IPython.display import display, HTML, Markdown, SVG, Latex, JSON, Javascript, Image
import base64, io
from PIL import Image as PILImage

buf = io.BytesIO(); PILImage.new("RGB", (3, 2), "red").save(buf, "PNG"); png = buf.getvalue()
buf = io.BytesIO(); PILImage.new("RGB", (3, 2), "blue").save(buf, "JPEG"); jpeg = buf.getvalue()

class Pdf:
    def _repr_pdf_(self):
        return b"%PDF-1.4 fake"

display(HTML("<b>bold</b>"))
display(Markdown("**md**"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'))
display(Image(png))
display(Image(jpeg, format="jpeg"))
display(Pdf())
display(Latex(r"$x^2$"))
display(JSON({"a": [1, 2]}))
display(Javascript("console.log(1)"))
display({"application/x-custom+json": {"k": "v"}, "text/plain": "custom"}, raw=True)
"""
    execution = sbx.run_code(code)
    assert execution.error is None, execution.error
    r = execution.results
    assert len(r) == 10 and not any(x.is_main_result for x in r)
    assert r[0].html == "<b>bold</b>"
    assert r[1].markdown == "**md**"
    assert r[2].svg.startswith("<svg")
    assert base64.b64decode(r[3].png).startswith(PNG_MAGIC)
    assert base64.b64decode(r[4].jpeg).startswith(b"\xff\xd8")
    assert base64.b64decode(r[5].pdf) == b"%PDF-1.4 fake"
    assert r[6].latex == "$x^2$"
    assert r[7].json == {"a": [1, 2]}
    assert r[8].javascript == "console.log(1)"
    assert r[9].extra == {"application/x-custom+json": {"k": "v"}}
    assert r[9].data["application/x-custom+json"] == {"k": "v"} and r[9].text == "custom"
    assert [x.formats() for x in r[:3]] == [["text", "html"], ["text", "markdown"], ["text", "svg"]]


def test_display_of_several_objects_keeps_order_and_the_last_expression_is_main(sbx: Sandbox) -> None:
    execution = sbx.run_code("from IPython.display import display\ndisplay(1, 'two')\ndisplay(3.0)\n[4]")
    assert [(r.text, r.is_main_result) for r in execution.results] == [
        ("1", False),
        ("two", False),
        ("3.0", False),
        ("[4]", True),
    ]
    assert execution.text == "[4]"


def test_result_data_is_the_whole_bundle(sbx: Sandbox) -> None:
    execution = sbx.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
    (result,) = execution.results
    assert {"text/plain", "image/png", "application/vnd.nullspace.chart+json"} <= set(result.data)
    assert result.data["image/png"] == result.png
    assert "image/png" in result.data


def test_dataframe_gives_html_and_table_schema(sbx: Sandbox) -> None:
    execution = sbx.run_code(
        "import pandas as pd\n"
        "pd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3.5, None],"
        " 'day': pd.to_datetime(['2024-01-01', '2024-01-02'])})"
    )
    (result,) = execution.results
    assert result.is_main_result
    assert "<table" in result.html and "Oslo" in result.html
    table = result.data[TABLE_MIME]
    assert table == result.extra[TABLE_MIME]
    fields = {f["name"]: f["type"] for f in table["schema"]["fields"]}
    assert fields == {"index": "integer", "city": "string", "temp": "number", "day": "datetime"}
    assert table["data"][0]["city"] == "Oslo" and table["data"][1]["temp"] is None
    assert table["data"][0]["day"].startswith("2024-01-01")


def test_long_dataframes_are_cut_with_a_count(sbx: Sandbox) -> None:
    execution = sbx.run_code("import pandas as pd\npd.Series(range(25_000), name='n')")
    table = execution.results[0].data[TABLE_MIME]
    assert len(table["data"]) == 10_000
    assert table["truncated"] is True and table["total_rows"] == 25_000


def test_pil_image_gives_a_png_that_decodes(sbx: Sandbox) -> None:
    from PIL import Image

    execution = sbx.run_code("from PIL import Image\nImage.new('RGB', (7, 5), (0, 128, 255))")
    (result,) = execution.results
    image = Image.open(io.BytesIO(base64.b64decode(result.png)))
    assert image.size == (7, 5) and image.getpixel((0, 0)) == (0, 128, 255)
    shown = sbx.run_code("Image.new('L', (2, 2)).show()")  # no image viewer: displays instead
    assert shown.error is None and len(shown.results) == 1 and shown.results[0].png


def test_a_string_result_has_its_quotes_removed_but_data_stays_raw(sbx: Sandbox) -> None:
    result = sbx.run_code("'naïve ✓ 😀'").results[0]
    assert result.text == "naïve ✓ 😀"
    assert result.data["text/plain"] == "'naïve ✓ 😀'"
