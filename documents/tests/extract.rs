//! Attachment text extraction: one small sample of each format, made here, yields its known
//! text; broken and hostile files are skipped with a reason, never a panic or an error.

use std::io::{Cursor, Write};

use documents::{Extraction, Format, Limits, SkipReason, extract_text, precheck};
use zip::write::SimpleFileOptions;

fn text_of(r: Extraction) -> String {
    match r {
        Extraction::Extracted(t) => t.text,
        Extraction::Skipped(reason) => panic!("expected text, got {reason}"),
    }
}

fn reason_of(r: Extraction) -> SkipReason {
    match r {
        Extraction::Skipped(reason) => reason,
        Extraction::Extracted(t) => panic!("expected a skip, got text {:?}", t.text),
    }
}

/// A zip package with the given (name, content) entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        w.start_file(*name, opts)
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        w.write_all(content)
            .unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
    w.finish()
        .unwrap_or_else(|e| panic!("finish: {e}"))
        .into_inner()
}

const W: &str = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"";

fn docx(body: &str) -> Vec<u8> {
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:document {W}><w:body>{body}</w:body></w:document>"
    );
    zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", document.as_bytes()),
    ])
}

#[test]
fn docx_yields_paragraphs_tabs_and_breaks() {
    // WordprocessingML (ECMA-376 Part 1, 17.3): w:p paragraphs of w:r runs with w:t text,
    // w:tab and w:br; w:delText is deleted text and w:instrText a field code, neither shown.
    let data = docx(concat!(
        "<w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:t xml:space=\"preserve\"> Word &amp; friends</w:t></w:r></w:p>",
        "<w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c</w:t></w:r></w:p>",
        "<w:p><w:r><w:delText>removed</w:delText><w:instrText>PAGE</w:instrText><w:t>kept</w:t></w:r></w:p>"
    ));
    let got = text_of(extract_text(
        &data,
        Some("spec.docx"),
        None,
        &Limits::default(),
    ));
    assert_eq!(got, "Hello Word & friends\na\tb\nc\nkept\n");
}

#[test]
fn pptx_yields_slides_in_number_order() {
    // PresentationML: ppt/slides/slideN.xml, DrawingML text in a:p / a:r / a:t.
    let slide = |text: &str| {
        format!(
            "<p:sld xmlns:p=\"p\" xmlns:a=\"a\"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{text}</a:t></a:r></a:p><a:p><a:r><a:t>more {text}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
        )
    };
    let (s1, s2, s10) = (slide("one"), slide("two"), slide("ten"));
    let data = zip_of(&[
        ("ppt/slides/slide10.xml", s10.as_bytes()),
        ("ppt/slides/slide2.xml", s2.as_bytes()),
        ("ppt/slides/slide1.xml", s1.as_bytes()),
    ]);
    let got = text_of(extract_text(
        &data,
        Some("deck.pptx"),
        Some("application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        &Limits::default(),
    ));
    assert_eq!(got, "one\nmore one\n\ntwo\nmore two\n\nten\nmore ten\n");
}

#[test]
fn xlsx_yields_sheets_rows_and_cells() {
    // SpreadsheetML: workbook sheets → relationships → worksheets; c/@t = s (shared string),
    // inlineStr, b (boolean), n (number); c/@r places a cell in its column.
    let workbook = br#"<workbook xmlns:r="r"><sheets><sheet name="Budget" sheetId="1" r:id="rId1"/><sheet name="Notes" sheetId="2" r:id="rId2"/></sheets></workbook>"#;
    let rels = br#"<Relationships><Relationship Id="rId2" Target="worksheets/sheet2.xml"/><Relationship Id="rId1" Target="/xl/worksheets/sheet1.xml"/></Relationships>"#;
    let shared = br#"<sst><si><t>Item</t></si><si><r><t>Co</t></r><r><t>st</t></r><rPh><t>kana</t></rPh></si><si><t>Coffee &amp; tea</t></si></sst>"#;
    let sheet1 = br#"<worksheet><sheetData>
        <row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>
        <row r="2"><c r="A2" t="s"><v>2</v></c><c r="C2"><f>1+2</f><v>3.5</v></c></row>
        <row r="3"><c r="B3" t="b"><v>1</v></c></row>
    </sheetData></worksheet>"#;
    let sheet2 = br#"<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>inline note</t></is></c></row></sheetData></worksheet>"#;
    let data = zip_of(&[
        ("xl/workbook.xml", workbook),
        ("xl/_rels/workbook.xml.rels", rels),
        ("xl/sharedStrings.xml", shared),
        ("xl/worksheets/sheet1.xml", sheet1),
        ("xl/worksheets/sheet2.xml", sheet2),
    ]);
    let got = text_of(extract_text(
        &data,
        Some("budget.xlsx"),
        None,
        &Limits::default(),
    ));
    assert_eq!(
        got,
        "Budget\nItem\tCost\nCoffee & tea\t\t3.5\n\tTRUE\n\nNotes\ninline note\n"
    );
}

#[test]
fn csv_markdown_and_plain_text_are_kept_as_text() {
    let limits = Limits::default();
    let csv = text_of(extract_text(
        b"name,qty\r\n\"a, b\",2\r\n",
        Some("t.csv"),
        Some("text/csv"),
        &limits,
    ));
    assert_eq!(csv, "name,qty\n\"a, b\",2\n");
    let md = text_of(extract_text(
        b"# Title\n\n- item\n",
        Some("README.md"),
        None,
        &limits,
    ));
    assert_eq!(md, "# Title\n\n- item\n");
    let txt = text_of(extract_text(
        "\u{feff}caf\u{e9}\n".as_bytes(),
        Some("notes.txt"),
        None,
        &limits,
    ));
    assert_eq!(txt, "caf\u{e9}\n");
    // UTF-16 with a byte order mark.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("hi \u{e9}".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(
        text_of(extract_text(&utf16, Some("w.txt"), None, &limits)),
        "hi \u{e9}\n"
    );
}

#[test]
fn html_yields_visible_text_only() {
    let html = br#"<!DOCTYPE html><html><head><title>Page</title><style>p { color: red }</style>
        <script>if (a < b && c) { document.write("<p>hidden</p>") }</script></head>
        <body><p>Hello&nbsp;<b>world</b> &amp; all</p><br><ul><li>one<li>two</ul>
        <table><tr><td>a<td>b</table><pre>  keep
  spacing</pre></body></html>"#;
    let got = text_of(extract_text(
        html,
        Some("page.html"),
        Some("text/html"),
        &Limits::default(),
    ));
    assert_eq!(
        got,
        "Page\nHello world & all\none\ntwo\na\tb\n  keep\n  spacing\n"
    );
}

/// A minimal PDF 1.4 (ISO 32000-1, 7.5: header, objects, xref table, trailer) with one page per
/// content stream, Helvetica as /F1. `(dict extras, raw stream bytes)` per page.
fn pdf_of(pages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let n = pages.len();
    // Objects: 1 catalog, 2 pages, 3 font, then per page: page, content.
    let mut objects: Vec<Vec<u8>> = Vec::new();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes());
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
    for (i, (extra, stream)) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        let mut s = format!("<< /Length {} {extra} >>\nstream\n", stream.len()).into_bytes();
        s.extend_from_slice(stream);
        s.extend_from_slice(b"\nendstream");
        objects.push(s);
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn text_page(text: &str) -> (&'static str, Vec<u8>) {
    (
        "",
        format!("BT /F1 24 Tf 72 700 Td ({text}) Tj ET").into_bytes(),
    )
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap_or_else(|e| panic!("deflate: {e}"));
    e.finish().unwrap_or_else(|e| panic!("deflate: {e}"))
}

#[test]
fn pdf_yields_the_text_of_each_page() {
    let compressed = (
        "/Filter /FlateDecode",
        deflate(b"BT /F1 12 Tf 72 700 Td (Second page) Tj ET"),
    );
    let data = pdf_of(&[text_page("Hello PDF world"), compressed]);
    let got = text_of(extract_text(
        &data,
        Some("doc.pdf"),
        Some("application/pdf"),
        &Limits::default(),
    ));
    assert_eq!(got, "Hello PDF world\n\nSecond page\n");
}

#[test]
fn truncated_pdf_is_skipped_with_a_reason() {
    let data = pdf_of(&[text_page("Hello PDF world")]);
    for cut in [data.len() / 2, 20, 9] {
        let reason = reason_of(extract_text(
            &data[..cut],
            Some("doc.pdf"),
            None,
            &Limits::default(),
        ));
        assert!(
            matches!(
                reason,
                SkipReason::Malformed(Format::Pdf) | SkipReason::NoText
            ),
            "cut at {cut}: {reason}"
        );
    }
}

fn small_limits() -> Limits {
    Limits {
        max_unpacked_bytes: 1024 * 1024,
        max_stream_bytes: 1024 * 1024,
        ..Limits::default()
    }
}

#[test]
fn pdf_page_stream_that_inflates_past_the_limit_is_dropped_not_decoded() {
    // Page 1's content says (Bomb) and then expands to 4 MiB; page 2 is ordinary.
    let mut bomb = b"BT /F1 12 Tf 72 700 Td (Bomb) Tj ET\n".to_vec();
    bomb.resize(4 * 1024 * 1024, b' ');
    let data = pdf_of(&[
        ("/Filter /FlateDecode", deflate(&bomb)),
        text_page("Still here"),
    ]);
    assert!(data.len() < 64 * 1024, "the sample is a small file");
    let got = text_of(extract_text(&data, Some("bomb.pdf"), None, &small_limits()));
    assert_eq!(got, "Still here\n");
}

#[test]
fn pdf_with_a_cross_reference_stream_bomb_is_skipped() {
    // A cross-reference stream (ISO 32000-1, 7.5.8) is inflated while the file is read, before
    // any page is looked at; this one expands to 4 MiB.
    // It is appended as an update whose startxref points at it, so it is the table a reader
    // uses.
    let mut data = pdf_of(&[text_page("Hello")]);
    let bomb = deflate(&vec![0u8; 4 * 1024 * 1024]);
    let at = data.len();
    data.extend_from_slice(
        format!(
            "9 0 obj\n<< /Type /XRef /Size 10 /W [1 2 1] /Root 1 0 R /Filter /FlateDecode /Length {} >>\nstream\n",
            bomb.len()
        )
        .as_bytes(),
    );
    data.extend_from_slice(&bomb);
    data.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{at}\n%%EOF\n").as_bytes());
    let reason = reason_of(extract_text(&data, Some("x.pdf"), None, &small_limits()));
    assert_eq!(reason, SkipReason::StreamTooLarge { limit: 1024 * 1024 });
    assert_eq!(
        reason.to_string(),
        "skipped: a required PDF stream decodes past 1048576 bytes"
    );
}

#[test]
fn encrypted_pdf_is_skipped() {
    let mut data = pdf_of(&[text_page("secret")]);
    let at = data.len() - b"%%EOF\n".len();
    data.splice(at..at, b"% /Encrypt 9 0 R\n".iter().copied());
    assert_eq!(
        reason_of(extract_text(&data, Some("x.pdf"), None, &Limits::default())),
        SkipReason::Encrypted(Format::Pdf)
    );
}

#[test]
fn zip_bomb_is_skipped_with_a_reason() {
    // 4 MiB of text in one part, a few KiB compressed, against a 1 MiB unpacked limit.
    let mut body = b"<w:p><w:r><w:t>".to_vec();
    body.resize(4 * 1024 * 1024, b'a');
    body.extend_from_slice(b"</w:t></w:r></w:p>");
    let document = [
        format!("<w:document {W}><w:body>").as_bytes(),
        &body,
        b"</w:body></w:document>",
    ]
    .concat();
    let data = zip_of(&[("word/document.xml", &document)]);
    assert!(data.len() < 64 * 1024, "the sample is a small file");
    let reason = reason_of(extract_text(
        &data,
        Some("bomb.docx"),
        None,
        &small_limits(),
    ));
    assert_eq!(reason, SkipReason::UnpackedTooLarge { limit: 1024 * 1024 });
    assert_eq!(
        reason.to_string(),
        "skipped: compressed content expands past 1048576 bytes"
    );
}

#[test]
fn zip_with_too_many_entries_is_skipped_before_it_is_indexed() {
    let names: Vec<String> = (0..50)
        .map(|i| format!("ppt/slides/slide{i}.xml"))
        .collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"<p/>"[..])).collect();
    let data = zip_of(&entries);
    let limits = Limits {
        max_archive_entries: 10,
        ..Limits::default()
    };
    assert_eq!(
        reason_of(extract_text(&data, Some("many.pptx"), None, &limits)),
        SkipReason::TooManyEntries { limit: 10 }
    );
}

#[test]
fn zip_declaring_more_entries_than_allowed_is_refused_from_its_directory_record() {
    // The end-of-central-directory record (APPNOTE.TXT 4.3.16) declares 65,535 entries: refused
    // before the zip reader would walk (and index) that many headers.
    let mut data = zip_of(&[("word/document.xml", b"<w:document/>")]);
    let eocd = data.len() - 22;
    assert_eq!(&data[eocd..eocd + 4], b"PK\x05\x06");
    data[eocd + 8..eocd + 12].copy_from_slice(&[0xFF; 4]);
    assert_eq!(
        reason_of(extract_text(
            &data,
            Some("a.docx"),
            None,
            &Limits::default()
        )),
        SkipReason::TooManyEntries { limit: 10_000 }
    );
}

#[test]
fn pdf_page_with_oversized_content_is_left_out_and_noted() {
    let long = format!(
        "BT /F1 12 Tf 72 700 Td (Long page) Tj ET{}",
        " ".repeat(4096)
    );
    let data = pdf_of(&[("", long.into_bytes()), text_page("Short page")]);
    let limits = Limits {
        max_page_content_bytes: 1024,
        ..Limits::default()
    };
    match extract_text(&data, Some("a.pdf"), None, &limits) {
        Extraction::Extracted(t) => {
            assert_eq!(t.text, "Short page\n");
            assert_eq!(
                t.incomplete.as_deref(),
                Some("1 of 2 pages left out: content over 1024 bytes")
            );
        }
        Extraction::Skipped(r) => panic!("{r}"),
    }
}

#[test]
fn text_is_cut_at_the_limit_and_says_so() {
    let limits = Limits {
        max_text_bytes: 10,
        ..Limits::default()
    };
    match extract_text(b"0123456789abcdef", Some("a.txt"), None, &limits) {
        Extraction::Extracted(t) => {
            assert_eq!(t.text, "0123456789\n");
            assert_eq!(t.incomplete.as_deref(), Some("text cut at 10 bytes"));
        }
        Extraction::Skipped(r) => panic!("{r}"),
    }
}

#[test]
fn garbage_in_every_format_is_skipped_not_a_panic() {
    let limits = Limits::default();
    let mut noise: Vec<u8> = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        noise.push((x >> 16) as u8);
    }
    let samples: Vec<Vec<u8>> = vec![
        Vec::new(),
        noise.clone(),
        [b"PK\x03\x04".as_slice(), &noise].concat(),
        [b"%PDF-1.7\n".as_slice(), &noise].concat(),
        [
            b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> stream\n".as_slice(),
            &noise,
        ]
        .concat(),
    ];
    for name in [
        "a.pdf", "a.docx", "a.pptx", "a.xlsx", "a.html", "a.csv", "a.md", "a.txt",
    ] {
        for data in &samples {
            // Any outcome but a panic; text only for the text formats.
            let r = extract_text(data, Some(name), None, &limits);
            if let Extraction::Extracted(t) = &r {
                assert!(
                    matches!(
                        t.format,
                        Format::Html | Format::Csv | Format::Markdown | Format::PlainText
                    ),
                    "{name}: {:?}",
                    t.format
                );
            }
        }
    }
}

#[test]
fn precheck_skips_unsupported_and_oversized_files_unread() {
    let limits = Limits::default();
    assert_eq!(
        precheck(
            10,
            Some("setup.exe"),
            Some("application/octet-stream"),
            &limits
        ),
        Some(SkipReason::UnsupportedType)
    );
    assert_eq!(
        precheck(limits.max_input_bytes + 1, Some("big.pdf"), None, &limits),
        Some(SkipReason::TooLarge {
            size: limits.max_input_bytes + 1,
            limit: limits.max_input_bytes
        })
    );
    assert_eq!(
        precheck(
            10,
            Some("report.PDF"),
            Some("application/octet-stream"),
            &limits
        ),
        None
    );
    assert_eq!(
        reason_of(extract_text(
            b"MZ\x90\x00",
            Some("setup.exe"),
            None,
            &limits
        )),
        SkipReason::UnsupportedType
    );
}
