"""The paper report's one format: what the benchmark writes is what agile-tui reads."""

import pytest

from buildhost import paper_report as report
from buildhost.paper_report import Pull, Release, Size


def test_a_written_report_reads_back_as_its_rows_panels_and_claims(tmp_path) -> None:
    sizes = [Size("storage", "multistage", 186_813_347, "348")]
    pulls = [
        Pull("storage", "multistage", 20.0, 1, 1, "absolute", 9, 9, 3.0, 3.5),
        Pull("storage", "multistage", 20.0, 1, 2, "incremental", 9, 9, 0.4, 0.5, "code"),
        Pull("storage", "multistage", 20.0, 1, 2, "absolute", 9, 9, 3.0, 4.5),
    ]
    releases = [Release(k, 200.0, 1, "absolute", 2, 9, 9, 1.0, float(k)) for k in (1, 2, 3, 4)]
    markdown = "\n".join(["# x", "", *report.claims_section(["smaller: yes", "faster: no"])])
    report.write(tmp_path, sizes, pulls, releases, markdown)

    read = report.read(tmp_path)
    assert read.sizes == sizes
    assert read.claims == ["smaller: yes", "faster: no"]
    fig5, fig6 = read.panels
    assert (fig5.groups, fig5.absolute_s, fig5.incremental_s) == (["multistage"], [4.5], [0.5])
    assert fig6.groups == [short for _, short in report.RELEASES]
    assert fig6.absolute_s == [1.0, 2.0, 3.0, 4.0]


def test_a_row_that_does_not_fit_is_said_with_its_file(tmp_path) -> None:
    report.write(tmp_path, [Size("storage", "squashed", 1, "")], [], [], "")
    (tmp_path / report.TABLE1).write_text("service,strategy,bytes,paper_core_mb\ns,q,lots,\n")
    with pytest.raises(ValueError, match=r"table1\.csv"):
        report.read(tmp_path)
