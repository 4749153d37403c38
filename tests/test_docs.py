"""Docs generated from a registry stay in step with it."""

from pathlib import Path

from zcnas.proxies import list_proxies, proxies_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_proxies_md_is_generated_from_the_registry():
    written = (ROOT / "docs" / "proxies.md").read_text()
    assert written == proxies_markdown(list_proxies()), "regenerate: zcnas proxies --markdown > docs/proxies.md"
