"""The process design kit of the silicon flow: its standard-cell liberty and its SRAM macros.

The open ASIC flows name a PDK checkout by ``PDK_ROOT``; IHP's SG13G2 keeps its liberty files
under ``PDK_ROOT/ihp-sg13g2/libs.ref/``:

- ``sg13g2_stdcell/lib/sg13g2_stdcell_<corner>.lib``: the standard cells (area, NLDM timing);
- ``sg13g2_sram/lib/RM_*_<corner>.lib`` (IHP's are ``RM_IHPSG13_<1P|2P>_<words>x<bits>_*``): the SRAM macros, one
  cell per file, with their area (um^2) and clock-to-output / setup timing.

:func:`find_pdk` finds them for one corner (default ``typ_1p20V_25C``, the typical corner) and
reads from every macro what the flow needs: the cell name, its words and bits (the liberty's
``memory()`` group), its ports (``A_*`` and, for a two-port macro, ``B_*``; each port reads and
writes), its area and its pins (a macro may or may not have a bit mask ``*_BM`` and built-in
self-test pins ``*_BIST_*``). Nothing is copied: the flow reads the files where they are.
"""

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_CORNER", "STDCELL_DIR", "SRAM_DIR", "Macro", "Pdk", "parse_macro", "find_pdk"]

#: The corner of the typical-case figures (IHP names: 1.2 V, 25 C).
DEFAULT_CORNER = "typ_1p20V_25C"

#: Where IHP's standard-cell and SRAM liberty files live under ``PDK_ROOT``.
STDCELL_DIR = Path("ihp-sg13g2/libs.ref/sg13g2_stdcell/lib")
SRAM_DIR = Path("ihp-sg13g2/libs.ref/sg13g2_sram/lib")


@dataclass(frozen=True)
class Macro:
    """One SRAM macro of the PDK.

    Members
    -------
    name : str
        Liberty cell name (the module the netlist instantiates).
    path : pathlib.Path
        Its liberty file.
    words, bits : int
        Depth and width.
    ports : int
        1 (``A_*``) or 2 (``A_*`` and ``B_*``); every port reads and writes.
    area_um2 : float
        Cell area from the liberty.
    pins : frozenset of str
        Pin and bus names without the port letter (``ADDR``, ``DIN``, ``BM``, ``BIST_EN``, ...).
    """

    name: str
    path: Path
    words: int
    bits: int
    ports: int
    area_um2: float
    pins: frozenset

    @property
    def address_bits(self):
        """Address width (``words`` is a power of two)."""
        return (self.words - 1).bit_length()

    def to_dict(self):
        """JSON form (as in the report's ``pdk.macros``)."""
        return {"name": self.name, "words": self.words, "bits": self.bits,
                "ports": self.ports, "area_um2": self.area_um2, "file": self.path.name}


def _strip_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


def parse_macro(path):
    """The :class:`Macro` of one SRAM liberty file.

    Raises
    ------
    ValueError
        If the file has no single cell with an ``area`` and a ``memory()`` group giving
        ``address_width`` and ``word_width``, or no ``A_CLK`` pin (names the file and the key).
    """
    path = Path(path)
    text = _strip_comments(path.read_text(errors="replace"))
    cells = re.findall(r"\bcell\s*\(\s*\"?([\w$.]+)\"?\s*\)", text)
    if len(cells) != 1:
        raise ValueError(f"{path}: an SRAM liberty must hold exactly one cell, found {len(cells)}")

    def number(key, pattern):
        match = re.search(pattern, text)
        if match is None:
            raise ValueError(f"{path}: missing {key!r}")
        return float(match.group(1))

    area = number("area", r"\barea\s*:\s*([0-9.eE+-]+)")
    address_width = int(number("memory.address_width", r"\baddress_width\s*:\s*(\d+)"))
    word_width = int(number("memory.word_width", r"\bword_width\s*:\s*(\d+)"))
    names = set(re.findall(r"\b(?:pin|bus)\s*\(\s*\"?([A-Za-z_]\w*)\"?\s*\)", text))
    ports = sum(1 for letter in "AB" if f"{letter}_CLK" in names)
    if ports == 0:
        raise ValueError(f"{path}: missing 'A_CLK' (no clocked port)")
    pins = frozenset(name[2:] for name in names if name[:2] == "A_")
    return Macro(name=cells[0], path=path, words=1 << address_width, bits=word_width,
                 ports=ports, area_um2=area, pins=pins)


@dataclass(frozen=True)
class Pdk:
    """The liberty files of one PDK corner.

    Members
    -------
    root : pathlib.Path
        ``PDK_ROOT``.
    corner : str
    stdcell : pathlib.Path
        The standard-cell liberty.
    macros : tuple of Macro
        The SRAM macros of the corner, smallest area first.
    """

    root: Path
    corner: str
    stdcell: Path
    macros: tuple

    def files(self):
        """Every liberty file the flow reads (for cache keys)."""
        return [self.stdcell, *(macro.path for macro in self.macros)]

    def to_dict(self):
        """JSON form (the report's ``pdk``)."""
        return {"root": str(self.root), "corner": self.corner, "stdcell": str(self.stdcell),
                "macros": [macro.to_dict() for macro in self.macros]}


def find_pdk(root, corner=DEFAULT_CORNER):
    """The standard cells and SRAM macros of ``corner`` under ``root`` (``PDK_ROOT``).

    Raises
    ------
    ValueError
        If ``root`` is not a folder, or the standard-cell liberty of the corner is not at
        ``root/ihp-sg13g2/libs.ref/sg13g2_stdcell/lib/sg13g2_stdcell_<corner>.lib``, or an SRAM
        liberty is malformed. A PDK without SRAM macros is accepted (every memory then becomes a
        register file).
    """
    if not isinstance(corner, str) or not re.fullmatch(r"\w+", corner):
        raise ValueError(f"corner must be a liberty corner name such as {DEFAULT_CORNER!r}, "
                         f"not {corner!r}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"PDK_ROOT must be a folder holding {STDCELL_DIR.parts[0]}/, "
                         f"not {str(root)!r}")
    stdcell = root / STDCELL_DIR / f"sg13g2_stdcell_{corner}.lib"
    if not stdcell.is_file():
        raise ValueError(f"PDK_ROOT {str(root)!r} has no standard-cell liberty for corner "
                         f"{corner!r}: expected {stdcell}")
    macro_files = sorted((root / SRAM_DIR).glob(f"RM_*_{corner}.lib"))
    macros = sorted((parse_macro(path) for path in macro_files),
                    key=lambda macro: (macro.area_um2, macro.name))
    return Pdk(root=root, corner=corner, stdcell=stdcell, macros=tuple(macros))
