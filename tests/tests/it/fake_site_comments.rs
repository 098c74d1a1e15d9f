//! The fake Confluence's comments, heavy pages and listing faults over real HTTP (issue 15):
//! footer and inline comments with replies and mentions, found by CQL `container in (…)`;
//! searches that expand several heavy bodies answer 504; a refused listing.

use integration_tests::fake::{ContentKind, FakeConfig, HEAVY_BODY_BYTES, SeedSpec};
use reqwest::StatusCode;
use serde_json::Value;

use crate::fake_site::{ALL_SCOPES, cloud, enc, fake, fake_with, get, get_json, grant, wiki_path};

const COMMENT_EXPAND: &str =
    "body.storage,ancestors,container,history,extensions.inlineProperties,extensions.resolution";

#[tokio::test]
async fn comments_of_pages_and_blog_posts_come_by_container_with_threads_passages_and_mentions() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let commented: Vec<_> = data
        .pages()
        .into_iter()
        .filter(|p| !p.comment_ids.is_empty() && !p.forbidden)
        .collect();
    let post = commented
        .iter()
        .find(|p| p.kind == ContentKind::BlogPost)
        .expect("a blog post with comments");
    let page = commented
        .iter()
        .find(|p| p.kind == ContentKind::Page)
        .expect("a page with comments");
    let cql = format!("type = comment AND container in ({}, {})", page.id, post.id);
    let path = wiki_path(
        &fake,
        &format!(
            "/rest/api/content/search?cql={}&limit=50&expand={COMMENT_EXPAND}",
            enc(&cql)
        ),
    );
    let (status, body) = get_json(&fake, &path, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let expected: Vec<_> = data
        .comments()
        .into_iter()
        .filter(|c| c.page_id == page.id || c.page_id == post.id)
        .collect();
    assert_eq!(results.len(), expected.len());
    assert_eq!(
        results.len(),
        page.comment_ids.len() + post.comment_ids.len()
    );
    let mut inline = 0;
    for c in &expected {
        let r = results.iter().find(|r| r["id"] == c.id.as_str()).unwrap();
        assert_eq!(r["type"], "comment");
        assert_eq!(r["container"]["id"], c.page_id.as_str());
        assert_eq!(r["extensions"]["location"], c.location);
        let parents: Vec<&str> = r["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(parents.last().copied(), c.parent_id.as_deref());
        let body = r["body"]["storage"]["value"].as_str().unwrap();
        assert!(body.contains(&format!("ri:account-id=\"{}\"", c.mentioned_account_id)));
        assert_eq!(
            r["history"]["createdBy"]["accountId"],
            c.author_account_id.as_str()
        );
        if let Some(text) = &c.annotated_text {
            inline += 1;
            assert_eq!(c.location, "inline");
            let props = &r["extensions"]["inlineProperties"];
            assert_eq!(props["originalSelection"], text.as_str());
            let marker = props["markerRef"].as_str().unwrap();
            let (_, page_body) = get_json(
                &fake,
                &wiki_path(
                    &fake,
                    &format!("/rest/api/content/{}?expand=body.storage", c.page_id),
                ),
                &token,
            )
            .await;
            let storage = page_body["body"]["storage"]["value"].as_str().unwrap();
            assert!(
                storage.contains(&format!("<ac:inline-comment-marker ac:ref=\"{marker}\">")),
                "the annotated passage is marked in the page body"
            );
        }
    }
    assert!(inline >= 4, "inline comments and their replies: {inline}");
    assert!(
        expected
            .iter()
            .any(|c| c.parent_id.is_some() && c.location == "footer")
    );

    let without = wiki_path(
        &fake,
        &format!("/rest/api/content/search?cql={}&limit=50", enc(&cql)),
    );
    let (_, body) = get_json(&fake, &without, &token).await;
    let first = &body["results"][0];
    assert!(first["extensions"].get("location").is_some());
    assert!(
        first["extensions"].get("inlineProperties").is_none() && first.get("body").is_none(),
        "only expanded properties appear"
    );
}

#[tokio::test]
async fn several_heavy_bodies_in_one_search_answer_504_and_one_alone_passes() {
    let mut seed = SeedSpec::small();
    seed.confluence_heavy_every = 4;
    let fake = fake_with(FakeConfig::default().with_sites(1, seed)).await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let cql = "space = DOCS AND type = page";
    let search = |limit: usize, expand: &str| {
        wiki_path(
            &fake,
            &format!(
                "/rest/api/content/search?cql={}&limit={limit}&expand={expand}",
                enc(cql)
            ),
        )
    };
    let heavy = get(&fake, &search(50, "body.storage"), &token).await;
    assert_eq!(heavy.status(), StatusCode::GATEWAY_TIMEOUT);
    let (status, _) = get_json(&fake, &search(50, "version"), &token).await;
    assert_eq!(status, StatusCode::OK, "without bodies the page is light");
    let data = fake.confluence(&cloud(&fake)).unwrap();
    let mut heavy = Vec::new();
    for hit in data.search(cql).unwrap() {
        let path = wiki_path(
            &fake,
            &format!("/rest/api/content/{}?expand=body.storage", hit.id),
        );
        let (_, page) = get_json(&fake, &path, &token).await;
        let size = page["body"]["storage"]["value"]
            .as_str()
            .map_or(0, str::len);
        if size >= HEAVY_BODY_BYTES {
            heavy.push(hit.id);
        }
    }
    assert!(heavy.len() >= 2, "{heavy:?}");
    let by_ids = |ids: &[String]| {
        wiki_path(
            &fake,
            &format!(
                "/rest/api/content/search?cql={}&limit=50&expand=body.storage",
                enc(&format!("id in ({})", ids.join(", ")))
            ),
        )
    };
    let (status, body) = get_json(&fake, &by_ids(&heavy[..1]), &token).await;
    assert_eq!(status, StatusCode::OK, "one heavy page alone passes");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(1));
    let two = get(&fake, &by_ids(&heavy[..2]), &token).await;
    assert_eq!(two.status(), StatusCode::GATEWAY_TIMEOUT);
    let mut too_heavy = None;
    for id in &heavy {
        let alone = get(&fake, &by_ids(std::slice::from_ref(id)), &token).await;
        if alone.status() == StatusCode::GATEWAY_TIMEOUT {
            too_heavy = Some(id.clone());
        }
    }
    assert!(
        too_heavy.is_some(),
        "one heavy page in four answers 504 even alone"
    );
}

#[tokio::test]
async fn a_refused_listing_answers_its_status_and_other_listings_stay() {
    let fake = fake().await;
    let token = grant(&fake, ALL_SCOPES).await.access;
    let data = fake.confluence(&cloud(&fake)).unwrap();
    data.refuse_listing(ContentKind::Comment, Some(403));
    let comments = wiki_path(
        &fake,
        &format!("/rest/api/content/search?cql={}", enc("type = comment")),
    );
    let (status, body) = get_json(&fake, &comments, &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let pages = wiki_path(
        &fake,
        &format!("/rest/api/content/search?cql={}", enc("type = page")),
    );
    let (status, _) = get_json(&fake, &pages, &token).await;
    assert_eq!(status, StatusCode::OK);
    data.refuse_listing(ContentKind::Comment, None);
    let (status, body): (StatusCode, Value) = get_json(&fake, &comments, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
