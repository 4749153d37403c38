"""Docs generated from a registry stay in step with it."""

from pathlib import Path

from zcnas.proxies import list_proxies, proxies_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_proxies_md_is_generated_from_the_registry():
    written = (ROOT / "docs" / "proxies.md").read_text()
    assert written == proxies_markdown(list_proxies()), "regenerate: zcnas proxies --markdown > docs/proxies.md"


def test_docs_and_proxy_references_cite_sources_directly():
    """The docs stand on their own: no citation points to a notes file the repository lacks."""
    texts = {path: path.read_text() for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]}
    texts["zcnas proxies"] = "\n".join(spec.reference for spec in list_proxies())
    for where, text in texts.items():
        assert "REFERENCES.md" not in text, f"{where} cites REFERENCES.md, which is not in the repository"
