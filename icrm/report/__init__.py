"""Reading a finished run: `icrm report` (one self-contained HTML page, of one run or
two side by side) and `icrm show` (items in the terminal).

`run` reads an ``icrm eval`` results directory or an ``icrm score`` output into items;
`html` renders the page; `show` formats items as text.
"""

from .html import render_report, write_report
from .run import Item, Run, load_run
from .show import format_item, select_items

__all__ = ["Item", "Run", "load_run", "render_report", "write_report", "format_item", "select_items"]
