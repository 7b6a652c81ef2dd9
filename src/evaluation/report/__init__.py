"""Programme reports: notebook templates run by papermill, rendered to HTML and a funder PDF.

``content``   report sections (Markdown, tables, figures) the notebook templates call
``build``     ``python -m evaluation build``: parallel papermill runs, atomic publication, skip cache, manifest
``render``    executed notebook → HTML without code → PDF (WeasyPrint, A4, cover, page numbers, synthetic mark)
``portfolio`` the commissioner's overview built from every ``results.json``
"""
