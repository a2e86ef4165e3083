"""Hostile cases for validation: spreadsheets, absurd numbers, prose-only spec rules, shadowed
columns, recipes with many mistakes at once, and manifests handed to `report` and `rerun`."""

from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostile_kit import Case, gen_all, gen_file, gen_recipe

XL = r"^data\.xlsx:"
SHEET = "Products"
MANIFEST = r"^ideopipe: the manifest is not usable:$"
M = r"^{T}/out/manifest\.csv"


# -- spreadsheets -------------------------------------------------------------------------


def workbook_bytes(rows: list[list[Any]], sheet: str = SHEET, chart: bool = False) -> bytes:
    """A real .xlsx, written by openpyxl."""
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for row in rows:
        ws.append(row)
    if chart:
        book.create_chartsheet("Chart")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def gen_xlsx(rows: list[list[Any]], **kw: Any) -> Callable[[Path], None]:
    return gen_file("data.xlsx", workbook_bytes(rows, **kw))


def with_member(name: str, content: bytes) -> Callable[[Path], None]:
    """A valid workbook whose `name` member is replaced by `content`."""

    def make(tmp: Path) -> None:
        source = zipfile.ZipFile(io.BytesIO(workbook_bytes([["sku", "product", "note"]])))
        with zipfile.ZipFile(tmp / "data.xlsx", "w", zipfile.ZIP_DEFLATED) as z:
            for info in source.infolist():
                z.writestr(info.filename, content if info.filename == name else source.read(info.filename))

    return make


SHEET_XML = "xl/worksheets/sheet1.xml"


def sheet_xml(body: str, prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<worksheet xmlns="http://schemas.'
        f'openxmlformats.org/spreadsheetml/2006/main"><sheetData>{body}</sheetData>'
        "</worksheet>"
    ).encode()


def wide_rows(tmp: Path) -> None:
    """A few hundred rows each reaching column XFD: 16,384 cells a row once read."""
    body = "".join(
        f'<row r="{n}"><c r="XFD{n}" t="inlineStr"><is><t>x</t></is></c></row>' for n in range(1, 400)
    )
    with_member(SHEET_XML, sheet_xml(body))(tmp)


def lying_sizes(tmp: Path) -> None:
    """A workbook whose zip directory says a member unpacks to 2 GB."""
    (tmp / "data.xlsx").write_bytes(workbook_bytes([["sku", "product", "note"]]))
    raw = bytearray((tmp / "data.xlsx").read_bytes())
    at = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, at + 24, 0x7FFF_FFFF)  # uncompressed size in the central directory
    (tmp / "data.xlsx").write_bytes(bytes(raw))


def many_members(tmp: Path) -> None:
    with zipfile.ZipFile(tmp / "data.xlsx", "w") as z:
        for n in range(10_001):
            z.writestr(f"x/{n}", b"")


ENTITY_BOMB = (
    '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi"))
    + "]>"
)
XXE = '<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def xlsx_recipe(extra: str = "", rows: str = f"xlsx: data.xlsx, sheet: {SHEET}") -> str:
    return (
        f'version: 1\nname: t\nrows: {{{rows}, key: "{{{{ sku }}}}"{extra}}}\nsteps:\n'
        '  - id: a\n    op: generate\n    prompt: "{{ product }}: {{ note }}"\n'
        "output: {dir: out}\n"
    )


HEADER = ["sku", "product", "note"]
XLSX_CASES = [
    Case(
        "xlsx-not-a-zip",
        "uses-xlsx.yaml",
        [XL + r" is not an \.xlsx file \(not a zip archive\)$"],
        make=gen_file("data.xlsx", b"sku,product,note\nA1,shoe,x\n"),
    ),
    Case(
        "xlsx-old-xls",
        "uses-xlsx.yaml",
        [XL + r" is an old \.xls or a password-protected workbook — save it as \.xlsx"],
        make=gen_file("data.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504),
    ),
    Case(
        "xlsx-encrypted",
        "uses-xlsx.yaml",
        [XL + r" is an old \.xls or a password-protected"],
        make=gen_file(
            "data.xlsx",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
            + b"\x00" * 40
            + "EncryptedPackage".encode("utf-16-le")
            + b"\x00" * 400,
        ),
    ),
    Case(
        "xlsx-truncated-zip",
        "uses-xlsx.yaml",
        [XL + r" is not (an|a readable) \.xlsx file"],
        make=lambda tmp: (
            (tmp / "data.xlsx").write_bytes(workbook_bytes([HEADER, ["A1", "shoe", "x"]])[:-200]) and None
        ),
    ),
    Case(
        "xlsx-lying-sizes",
        "uses-xlsx.yaml",
        [XL + r" unpacks to [\d,]+ bytes; the limit is 268,435,456 \(a zip bomb\?\)$"],
        make=lying_sizes,
    ),
    Case(
        "xlsx-10001-members",
        "uses-xlsx.yaml",
        [XL + r" holds 10,001 files; an \.xlsx is limited to 10,000$"],
        make=many_members,
    ),
    Case(
        "xlsx-16384-columns",
        "uses-xlsx.yaml",
        [XL + r"1: sheet 'Products', column XFD: a row wider than 1,000 columns$"],
        make=wide_rows,
    ),
    Case(
        "xlsx-entity-bomb",
        "uses-xlsx.yaml",
        [XL + r" unreadable \.xlsx file: "],
        make=with_member(
            SHEET_XML,
            sheet_xml("", ENTITY_BOMB).replace(
                b"<sheetData>", b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&i;</t></is></c></row>'
            ),
        ),
    ),
    Case(
        "xlsx-external-entity",
        "uses-xlsx.yaml",
        [XL + r" unreadable \.xlsx file: "],
        make=with_member(
            SHEET_XML,
            sheet_xml("", XXE).replace(
                b"<sheetData>", b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&x;</t></is></c></row>'
            ),
        ),
    ),
    Case(
        "xlsx-not-xml",
        "uses-xlsx.yaml",
        [XL + r" unreadable \.xlsx file: "],
        make=with_member(SHEET_XML, b"\x00\x01 not xml at all"),
    ),
    Case(
        "xlsx-unknown-sheet",
        None,
        [r"^{R}:3:\d+: rows\.sheet: data\.xlsx has no sheet 'Prodcts' — did you mean 'Products'\?$"],
        make=gen_all(
            gen_xlsx([HEADER, ["A1", "shoe", "x"]]),
            gen_recipe(xlsx_recipe(rows="xlsx: data.xlsx, sheet: Prodcts")),
        ),
    ),
    Case(
        "xlsx-broken-chart-sheet",
        None,
        [XL + r" unreadable \.xlsx file: "],
        make=gen_all(
            gen_xlsx([HEADER], chart=True), gen_recipe(xlsx_recipe(rows="xlsx: data.xlsx, sheet: Chart"))
        ),
    ),
    Case(
        "xlsx-empty-sheet",
        "uses-xlsx.yaml",
        [XL + r" sheet 'Products' is empty: a header row is needed$"],
        make=gen_xlsx([]),
    ),
    Case(
        "xlsx-duplicate-header",
        "uses-xlsx.yaml",
        [XL + r"1: sheet 'Products', column C: header 'product' appears twice$"],
        make=gen_xlsx([["sku", "product", "product"], ["A1", "shoe", "x"]]),
    ),
    Case(
        "xlsx-empty-header-cell",
        "uses-xlsx.yaml",
        [XL + r"1: sheet 'Products', column B: header cell has no name$"],
        make=gen_xlsx([["sku", None, "note"], ["A1", "shoe", "x"]]),
    ),
    Case(
        "xlsx-value-beyond-header",
        "uses-xlsx.yaml",
        [XL + r"3: sheet 'Products', column E: has a value beyond the header's last column C$"],
        make=gen_xlsx([HEADER, ["A1", "shoe", "x"], ["A2", "hat", "y", None, "z"]]),
    ),
    Case(
        "xlsx-sheet-number",
        None,
        [r"^{R}:3:\d+: rows\.sheet: 2 is not of type 'string'"],
        make=gen_all(gen_xlsx([HEADER]), gen_recipe(xlsx_recipe(rows="xlsx: data.xlsx, sheet: 2"))),
    ),
    Case(
        "xlsx-empty-file",
        "uses-xlsx.yaml",
        [XL + r" is not an \.xlsx file \(not a zip archive\)$"],
        make=gen_file("data.xlsx", b""),
    ),
    Case(
        "xlsx-link-to-passwd",
        "uses-xlsx.yaml",
        [XL + r" is not an \.xlsx file \(not a zip archive\)$"],
        make=lambda tmp: (tmp / "data.xlsx").symlink_to("/etc/passwd"),
    ),
    Case(
        "xlsx-folder",
        "uses-xlsx.yaml",
        [r"^{R}:3:\d+: rows\.xlsx: xlsx file is not a regular file: "],
        make=lambda tmp: (tmp / "data.xlsx").mkdir(),
    ),
    Case(
        "xlsx-duplicate-keys",
        "uses-xlsx.yaml",
        [
            r"^{R}:3:\d+: rows\.key: duplicate row key 'A1': data\.xlsx:2 \(sheet Products\) and "
            r"data\.xlsx:3 \(sheet Products\)"
        ],
        make=gen_xlsx([HEADER, ["A1", "shoe", "x"], ["A1", "hat", "y"]]),
    ),
    Case(
        "xlsx-sheet-without-xlsx",
        None,
        [r"^{R}:3:\d+: rows\.sheet: 'sheet' goes only with 'xlsx' — add xlsx: or remove sheet$"],
        make=gen_recipe(xlsx_recipe(rows="csv: data.csv, sheet: Products")),
    ),
]


# -- absurd numbers, prose-only spec rules, shadowed columns, many mistakes at once --------


def recipe(extra: str, step: str = "", rows: str = "[{product: shoe}]") -> Callable[[Path], Path]:
    return gen_recipe(
        f"version: 1\nname: t\nrows: {rows}\n{extra}steps:\n  - id: a\n"
        f'    op: generate\n    prompt: "{{{{ product }}}}"\n{step}'
        "output: {dir: out}\n"
    )


def image(tmp: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp / "img.png")


NOT_NUMBER = r"is not a number ideopipe can use$"
RECIPE_CASES = [
    Case(
        "timeout-inf",
        None,
        [r"^{R}:4:\d+: timeouts\.read: inf \(\.inf\) " + NOT_NUMBER],
        make=recipe("timeouts: {read: .inf}\n"),
    ),
    Case(
        "timeout-minus-inf",
        None,
        [r"^{R}:4:\d+: timeouts\.total: -inf \(-\.inf\) " + NOT_NUMBER],
        make=recipe("timeouts: {total: -.inf}\n"),
    ),
    Case(
        "timeout-nan",
        None,
        [r"^{R}:4:\d+: timeouts\.connect: NaN \(\.nan\) " + NOT_NUMBER],
        make=recipe("timeouts: {connect: .nan}\n"),
    ),
    Case(
        "timeout-over-a-day",
        None,
        [r"^{R}:4:\d+: timeouts\.total: 86401 is greater than the maximum of 86400$"],
        make=recipe("timeouts: {total: 86401}\n"),
    ),
    Case(
        "timeout-zero",
        None,
        [r"^{R}:4:\d+: timeouts\.connect: 0 is less than or equal to the minimum of 0$"],
        make=recipe("timeouts: {connect: 0}\n"),
    ),
    Case(
        "timeout-huge-float",
        None,
        [r"^{R}:4:\d+: timeouts\.read: 1e\+300 is greater than the maximum of 86400$"],
        make=recipe("timeouts: {read: 1.0e+300}\n"),
    ),
    Case(
        "budget-inf",
        None,
        [r"^{R}:4:\d+: budget_usd: inf \(\.inf\) " + NOT_NUMBER],
        make=recipe("budget_usd: .inf\n"),
    ),
    Case(
        "price-inf",
        None,
        [r"^{R}:4:\d+: prices\.generate:V_3: inf \(\.inf\) " + NOT_NUMBER],
        make=recipe('prices: {"generate:V_3": .inf}\n'),
    ),
    Case(
        "var-inf",
        None,
        [r"^{R}:4:\d+: vars\.n: inf \(\.inf\) " + NOT_NUMBER],
        make=recipe("vars: {n: .inf}\n"),
    ),
    Case(
        "prose-palette-v1",
        "prose-palette-v1.yaml",
        [
            r"^{R}:9:20: steps\[0\]\.color_palette: color_palette is not supported by V_1 — the "
            r"spec accepts it with V_2, V_2_TURBO and V_3$"
        ],
    ),
    Case(
        "prose-palette-v2a-turbo",
        "prose-palette-v2a-turbo.yaml",
        [r"^{R}:9:20: steps\[0\]\.color_palette: color_palette is not supported by V_2A_TURBO"],
    ),
    Case(
        "prose-negative-v2a",
        "prose-negative-v2a.yaml",
        [r"^{R}:9:22: steps\[0\]\.negative_prompt: negative_prompt is not available for V_2A — "],
    ),
    Case(
        "prose-negative-default-v2a-turbo",
        "prose-negative-default-v2a-turbo.yaml",
        [
            r"^{R}:4:\d+: defaults\.negative_prompt: negative_prompt is not available for "
            r"V_2A_TURBO"
        ],
        make=image,
    ),
    Case(
        "prose-resolution-v1-turbo",
        "prose-resolution-v1.yaml",
        [
            r"^{R}:9:17: steps\[0\]\.resolution: resolution is for model version 2\.0 only, not "
            r"V_1_TURBO"
        ],
    ),
    Case(
        "prose-style-codes-with-type",
        "prose-style-codes-type.yaml",
        [r"^{R}:8:18: steps\[0\]\.style_codes: style_codes cannot be used with style_type"],
    ),
    Case(
        "prose-style-codes-with-refs",
        "prose-style-codes-refs.yaml",
        [
            r"^{R}:8:18: steps\[0\]\.style_codes: style_codes cannot be used with "
            r"style_reference_images"
        ],
        make=image,
    ),
    Case(
        "prose-two-characters",
        "prose-two-characters.yaml",
        [
            r"^{R}:8:33: steps\[0\]\.character_reference_images: 2 character reference images; "
            r"the API supports 1 — keep one$"
        ],
        make=image,
    ),
    Case(
        "prose-palette-default-v1",
        None,
        [r"^{R}:4:\d+: defaults\.color_palette: color_palette is not supported by V_1 — "],
        make=recipe("defaults: {color_palette: {name: PASTEL}, model: V_1}\n"),
    ),
    Case(
        "prose-style-type-default-with-codes",
        None,
        [r"^{R}:\d+:\d+: steps\[0\]\.style_codes: style_codes cannot be used with style_type"],
        make=recipe("defaults: {style_type: DESIGN}\n", step="    style_codes: [AAFF5733]\n"),
    ),
    Case(
        "prose-three-characters-remix",
        None,
        [r"^{R}:\d+:\d+: steps\[0\]\.character_reference_images: 3 character reference images"],
        make=gen_all(
            image,
            gen_recipe(
                "version: 1\nname: t\nsteps:\n  - id: a\n    op: remix\n    image: img.png\n"
                "    prompt: x\n    character_reference_images: [img.png, img.png, img.png]\n"
            ),
        ),
    ),
    Case(
        "shadow-key-column",
        "shadow-key.yaml",
        [
            r"^data\.csv:1: column key: column 'key' has the name of a template variable \(the row "
            r"key\), so steps\[0\]\.prompt would not read it — write \{\{ row\.key \}\} for the "
            r"column, or rename it$"
        ],
        data={"data.csv": "shadow-key.csv"},
    ),
    Case(
        "shadow-step-jsonl",
        None,
        [r"^data\.jsonl:1: column step: column 'step' has the name of a template variable"],
        make=gen_all(
            gen_file("data.jsonl", b'{"product": "shoe", "step": "s1"}\n'),
            recipe("", rows="{jsonl: data.jsonl}", step='    negative_prompt: "{{ step }}"\n'),
        ),
    ),
    Case(
        "shadow-input-inline",
        None,
        [r"^{R}:3: column input: column 'input' has the name of a template variable"],
        make=recipe("", rows="[{product: shoe, input: x.png}]", step='    negative_prompt: "{{ input }}"\n'),
    ),
    Case(
        "shadow-row-xlsx",
        None,
        [XL + r"1: sheet 'Products', column B: column 'row' has the name of a template"],
        make=gen_all(
            gen_xlsx([["sku", "row", "product", "note"], ["A1", "3", "shoe", "x"]]),
            gen_recipe(xlsx_recipe().replace("{{ note }}", "{{ note }} {{ row }}")),
        ),
    ),
    Case(
        "matrix-bad-value",
        "matrix-bad-value.yaml",
        [
            r"^{R}:5:18: matrix\.ratio\[1\]: aspect ratio '7x3' is not accepted here; expected one "
            r"of .* \(used by steps\[0\]\.aspect_ratio\)$"
        ],
    ),
    Case(
        "matrix-not-integer",
        None,
        [
            r"^{R}:4:\d+: matrix\.n\[1\]: renders to 'many', not an integer \(used by "
            r"steps\[0\]\.num_images\)$"
        ],
        make=recipe("matrix: {n: [1, many]}\n", step='    num_images: "{{ n }}"\n'),
    ),
    Case(
        "all-at-once",
        "all-at-once.yaml",
        [
            r"^{R}:9:15: steps\[0\]\.callback: unknown field 'callback'",
            r"^{R}:8:13: steps\[0\]\.prompt: template syntax error: ",
            r"^data\.csv:3: has 1 fields, the header has 2$",
            r"^{R}:7:12: steps\[0\]\.image: file not found: .*missing\.png$",
            r"^ideopipe: 4 error\(s\); nothing was sent$",
        ],
        make=gen_file("data.csv", b"sku,product\nA1,shoe\nA2\n"),
    ),
    Case(
        "rows-and-templates-at-once",
        None,
        [
            r"^data\.csv:3: has 1 fields, the header has 2$",
            r"^{R}:8:\d+: steps\[0\]\.prompt: undefined variable: 'prodct' is undefined \(did you mean "
            r"'product'\?\) — row data\.csv:2; the same problem on 1 more row$",
            r"^ideopipe: 2 error\(s\); nothing was sent$",
        ],
        make=gen_all(
            gen_file("data.csv", b"sku,product\nA1,shoe\nA2\nA3,hat\n"),
            gen_recipe(
                'version: 1\nname: t\nrows: {csv: data.csv, key: "{{ sku }}"}\n'
                "steps:\n  - id: a\n    op: generate\n    num_images: 1\n"
                '    prompt: "{{ prodct }}"\n'
            ),
        ),
    ),
    Case(
        "allow-empty-wrong-type",
        None,
        [r"^{R}:3:\d+: rows\.allow_empty: 3 is not valid here"],
        make=gen_recipe(
            "version: 1\nname: t\nrows: {csv: data.csv, allow_empty: 3}\n"
            "steps: [{id: a, op: generate, prompt: x}]\n"
        ),
    ),
    Case(
        "delimiter-without-csv",
        None,
        [r"^{R}:3:\d+: rows\.delimiter: 'delimiter' goes only with 'csv'"],
        make=gen_recipe(
            "version: 1\nname: t\nrows: {jsonl: d.jsonl, delimiter: ';'}\n"
            "steps: [{id: a, op: generate, prompt: x}]\n"
        ),
    ),
    Case(
        "csv-empty-header-name",
        "uses-csv.yaml",
        [r"^data\.csv:1: header column 2 has no name$"],
        make=gen_file("data.csv", b"sku,,note\nA1,shoe,x\n"),
    ),
    Case(
        "csv-empty-file",
        "uses-csv.yaml",
        [r"^data\.csv: is empty: a header line is needed$"],
        make=gen_file("data.csv", b""),
    ),
    Case(
        "output-into-state-folder",
        None,
        [r"^{R}:\d+:\d+: output\.file: '\.ideopipe/x-0\.png': '\.ideopipe' is reserved"],
        make=gen_recipe(
            "version: 1\nname: t\nrows: [{p: x}]\nsteps: [{id: a, op: generate, "
            'prompt: x}]\noutput: {dir: out, file: ".ideopipe/x-{{ index }}.png"}\n'
        ),
    ),
    Case(
        "output-windows-drive",
        None,
        [r"^{R}:\d+:\d+: output\.file: 'C:/x-0\.png': is an absolute path"],
        make=gen_recipe(
            "version: 1\nname: t\nrows: [{p: x}]\nsteps: [{id: a, op: generate, "
            'prompt: x}]\noutput: {dir: out, file: "C:/x-{{ index }}.png"}\n'
        ),
    ),
    Case(
        "output-backslash-dotdot",
        None,
        [r"^{R}:\d+:\d+: output\.file: .*contains '\.\.'; output\.file must stay inside"],
        make=gen_recipe(
            "version: 1\nname: t\nrows: [{p: x}]\nsteps: [{id: a, op: generate, "
            "prompt: x}]\noutput: {dir: out, file: '..\\..\\x-{{ index }}.png'}\n"
        ),
    ),
    Case(
        "seed-template-out-of-range",
        None,
        [r"^{R}:4:\d+: seed: 99999999999 is outside 0\.\.2147483647"],
        make=recipe('seed: "{{ 99999999999 }}"\n'),
    ),
]


# -- manifests handed to report and rerun --------------------------------------------------


def edit_manifest(
    change: Callable[[list[dict[str, str]]], None], name: str = "manifest.csv"
) -> Callable[[Path], None]:
    """Rewrite out/manifest.csv of the copied run after `change` edits its rows."""

    def make(tmp: Path) -> None:
        path = tmp / "out" / "manifest.csv"
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        change(rows)
        with open(tmp / "out" / name, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    return make


def set_cell(column: str, value: str, row: int = 0) -> Callable[[list[dict[str, str]]], None]:
    def change(rows: list[dict[str, str]]) -> None:
        rows[row][column] = value

    return change


def every_file(value: str) -> Callable[[list[dict[str, str]]], None]:
    """Three copies of every row, each with `file` set to `value`."""

    def change(rows: list[dict[str, str]]) -> None:
        rows.extend([dict(r) for r in rows] * 2)
        for r in rows:
            r["file"] = value

    return change


def link_out(tmp: Path) -> None:
    (tmp / "elsewhere").mkdir()
    (tmp / "out" / "link").symlink_to(tmp / "elsewhere")
    edit_manifest(set_cell("file", "link/x.png"))(tmp)


def as_jsonl(tmp: Path) -> None:
    path = tmp / "out" / "manifest.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[1]["matrix"] = '{"ratio": {"nested": [1, 2]}}'
    path.unlink()
    with open(tmp / "out" / "manifest.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


REPORT = ("report", "{T}/out")
RERUN = ("rerun", "{T}/out/manifest.csv", "--yes", "--quiet")


def manifest_case(
    id: str,
    argv: tuple[str, ...],
    expect: list[str],
    make: Callable[[Path], Path | None],
    summary: str = MANIFEST,
) -> Case:
    return Case(id, None, expect, make=make, argv=argv, summary=summary, needs_run=True)


# A file that is no manifest at all is refused by the path checks, in one sentence.
NOT_A_MANIFEST = r"^ideopipe: \S+ (not an ideopipe manifest|cannot be read as a manifest)"


MANIFEST_CASES = [
    manifest_case(
        "report-file-absolute",
        REPORT,
        [M + r":2: file: '/etc/passwd' leaves the output folder: it is an absolute path$"],
        edit_manifest(set_cell("file", "/etc/passwd")),
    ),
    manifest_case(
        "rerun-file-absolute",
        RERUN,
        [M + r":2: file: '/root/\.bashrc' leaves the output folder: it is an absolute"],
        edit_manifest(set_cell("file", "/root/.bashrc")),
    ),
    manifest_case(
        "report-file-dotdot",
        REPORT,
        [M + r":3: file: '1/\.\./\.\./\.\./x\.png' leaves the output folder: it contains"],
        edit_manifest(set_cell("file", "1/../../../x.png", 1)),
    ),
    manifest_case(
        "rerun-file-dotdot",
        RERUN,
        [M + r":2: file: '\.\./x\.png' leaves the output folder: it contains '\.\.'$"],
        edit_manifest(set_cell("file", "../x.png")),
    ),
    manifest_case(
        "rerun-file-backslash-dotdot",
        RERUN,
        [M + r":2: file: '\.\.\\\\x\.png' leaves the output folder: it contains '\.\.'$"],
        edit_manifest(set_cell("file", "..\\x.png")),
    ),
    manifest_case(
        "report-file-drive",
        REPORT,
        [M + r":2: file: 'C:\\\\x\.png' leaves the output folder: it is an absolute path"],
        edit_manifest(set_cell("file", "C:\\x.png")),
    ),
    manifest_case(
        "report-file-symlink",
        REPORT,
        [M + r":2: file: 'link/x\.png' leaves the output folder through a symbolic link"],
        link_out,
    ),
    manifest_case(
        "rerun-file-symlink",
        RERUN,
        [M + r":2: file: 'link/x\.png' leaves the output folder through a symbolic link"],
        link_out,
    ),
    manifest_case(
        "report-matrix-not-json",
        REPORT,
        [M + r":3: matrix: malformed matrix: '\{\"ratio\": ' is not JSON"],
        edit_manifest(set_cell("matrix", '{"ratio": ', 1)),
    ),
    manifest_case(
        "rerun-matrix-list",
        RERUN,
        [M + r":2: matrix: malformed matrix: '\[1, 2\]' is not a JSON object$"],
        edit_manifest(set_cell("matrix", "[1, 2]")),
    ),
    manifest_case(
        "rerun-matrix-empty",
        RERUN,
        [M + r":2: matrix: malformed matrix: the cell is empty"],
        edit_manifest(set_cell("matrix", "")),
    ),
    manifest_case(
        "report-matrix-nested-jsonl",
        ("report", "{T}/out"),
        [
            r"^{T}/out/manifest\.jsonl:2: matrix: malformed matrix: the value of 'ratio' is "
            r"not a plain value$"
        ],
        as_jsonl,
    ),
    manifest_case(
        "report-status-unknown",
        REPORT,
        [M + r":2: status: unknown status 'pwned'; expected one of "],
        edit_manifest(set_cell("status", "pwned")),
    ),
    manifest_case(
        "rerun-status-unknown",
        RERUN,
        [M + r":5: status: unknown status 'sending'; expected one of "],
        edit_manifest(set_cell("status", "sending", 3)),
    ),
    manifest_case(
        "rerun-seed-not-integer",
        RERUN,
        [M + r":2: seed: seed is missing or not an integer; rerun needs it$"],
        edit_manifest(set_cell("seed", "twelve")),
    ),
    manifest_case(
        "report-file-nul",
        REPORT,
        [M + r":2: file: 'a\\x00\.png' leaves the output folder: it contains a NUL character$"],
        edit_manifest(set_cell("file", "a\x00.png")),
    ),
    manifest_case(
        "rerun-status-empty",
        RERUN,
        [M + r":2: status: status is empty; expected one of "],
        edit_manifest(set_cell("status", "")),
    ),
    manifest_case(
        "report-jsonl-garbage",
        REPORT,
        [r"^{T}/out/manifest\.jsonl: unreadable manifest: "],
        gen_all(
            lambda tmp: (tmp / "out" / "manifest.csv").unlink(),
            gen_file("out/manifest.jsonl", b'{"image_id": "x"}\n{not json\n'),
        ),
    ),
    manifest_case(
        "report-not-a-manifest",
        REPORT,
        [r"^ideopipe: {T}/out/manifest\.csv: not an ideopipe manifest \(no column run_id, task_id, image_id"],
        gen_file("out/manifest.csv", b"a,b\n1,2\n"),
        NOT_A_MANIFEST,
    ),
    manifest_case(
        "rerun-no-manifest",
        ("rerun", "{T}/out/manifest.parquet", "--yes"),
        [r"^ideopipe: {T}/out/manifest\.parquet: cannot be read as a manifest \("],
        gen_file("out/manifest.parquet", b"PAR1 this is not parquet PAR1"),
        NOT_A_MANIFEST,
    ),
    manifest_case(
        "report-every-row-folded",
        REPORT,
        [
            M + r":2: file: '/etc/x' leaves the output folder: it is an absolute path$",
            M + r":\d+: file: '/etc/x' .*\n.*\n.*\n.*\n.*: file: \.\.\. the same problem on "
            r"\d+ more rows$",
        ],
        edit_manifest(every_file("/etc/x")),
    ),
]

VALID_CASES: list[Case] = XLSX_CASES + RECIPE_CASES + MANIFEST_CASES
