//! Command-line flags of the `fake-atlassian` binary, turned into a [`FakeConfig`].

use std::net::IpAddr;
use std::time::Duration;

use super::config::{ClientApp, FakeConfig, SiteSpec};
use super::faults::Fault;
use super::seed::SeedSpec;

pub const USAGE: &str = "\
fake-atlassian: a fake Atlassian Cloud (OAuth 2.0 3LO, Jira, Confluence, media host) on loopback.

USAGE: fake-atlassian [FLAGS]

  --host IP                     address to bind (default 127.0.0.1)
  --port N                      main port: auth + API (default: any free port)
  --media-port N                media host port (default: any free port)
  --preset small|large          starting data set (default small)
  --jira-projects K:N,...       Jira projects and issue counts, e.g. ALPHA:1500,BETA:500
  --confluence-spaces K:N,...   Confluence spaces and page counts, e.g. DOCS:600,ENG:400
  --attachments N               N ordinary attachments (0 B .. 512 KiB) per product, replacing
                                the preset's attachments, its large ones included (the large
                                preset has 5 to 200 MiB ones): --attachments 0 means none
  --large-attachment-mib N      add one attachment of N MiB to each product (repeatable)
  --client ID:SECRET:URI        register an app (repeatable; replaces the two default apps)
  --redirect-uri URI            register one more callback URI on every app (repeatable)
  --sites N                     number of sites (default 1)
  --latency-ms N                delay every API request (paths under /ex/) by N ms, as make
                                bench does; OAuth, consent, admin and media-host requests are
                                not delayed
  --fault-rate P                answer this share of API calls with 429 (Retry-After: 1) or 503
  --access-token-ttl-secs N     access-token lifetime (default 3600)
  --seed N                      data and fault seed
  --help                        this text

On start one JSON line goes to stdout: {\"base_url\",\"media_url\",\"sites\":[{cloud_id,url,name}],\"clients\":[id]};
logs (no tokens, codes or secrets) go to stderr. The admin API lives under /__admin/.";

/// What the flags asked for.
#[derive(Debug)]
pub enum Command {
    Run(Box<FakeConfig>, Vec<Fault>),
    Help,
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a String, String> {
    it.next().ok_or_else(|| format!("{flag} needs a value"))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: '{v}' is not a valid number"))
}

fn pairs(flag: &str, v: &str) -> Result<Vec<(String, usize)>, String> {
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, n) = p
                .split_once(':')
                .ok_or_else(|| format!("{flag}: expected KEY:COUNT, got '{p}'"))?;
            let key = k.trim().to_ascii_uppercase();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("{flag}: '{k}' is not a valid key"));
            }
            Ok((key, number(flag, n.trim())?))
        })
        .collect()
}

/// Parses the flags (without the program name).
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut config = FakeConfig::default();
    let mut seed = SeedSpec::small();
    let mut jira = None;
    let mut spaces = None;
    let mut attachments = None;
    let mut large = Vec::new();
    let mut clients: Vec<ClientApp> = Vec::new();
    let mut redirects = Vec::new();
    let mut sites = 1usize;
    let mut faults = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--host" => config.bind = number::<IpAddr>(flag, value(flag, &mut it)?)?,
            "--port" => config.port = number(flag, value(flag, &mut it)?)?,
            "--media-port" => config.media_port = number(flag, value(flag, &mut it)?)?,
            "--preset" => {
                seed = match value(flag, &mut it)?.as_str() {
                    "small" => SeedSpec::small(),
                    "large" => SeedSpec::large(),
                    "empty" => SeedSpec::empty(),
                    other => {
                        return Err(format!(
                            "--preset: unknown preset '{other}' (small, large, empty)"
                        ));
                    }
                }
            }
            "--jira-projects" => jira = Some(pairs(flag, value(flag, &mut it)?)?),
            "--confluence-spaces" => spaces = Some(pairs(flag, value(flag, &mut it)?)?),
            "--attachments" => attachments = Some(number::<usize>(flag, value(flag, &mut it)?)?),
            "--large-attachment-mib" => {
                large.push(number::<u64>(flag, value(flag, &mut it)?)? * 1024 * 1024)
            }
            "--client" => {
                let v = value(flag, &mut it)?;
                let mut parts = v.splitn(3, ':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(id), Some(secret), Some(uri))
                        if !id.is_empty() && !secret.is_empty() && !uri.is_empty() =>
                    {
                        clients.push(ClientApp::new(id, secret, &[uri]));
                    }
                    _ => return Err("--client: expected ID:SECRET:REDIRECT_URI".into()),
                }
            }
            "--redirect-uri" => redirects.push(value(flag, &mut it)?.clone()),
            "--sites" => sites = number(flag, value(flag, &mut it)?)?,
            "--latency-ms" => faults.push(Fault::api_latency(number(flag, value(flag, &mut it)?)?)),
            "--fault-rate" => {
                let p: f64 = number(flag, value(flag, &mut it)?)?;
                if !(0.0..=1.0).contains(&p) {
                    return Err("--fault-rate: expected a share between 0 and 1".into());
                }
                faults.push(
                    Fault::status("/ex/", 429)
                        .retry_after(1)
                        .probability(p / 2.0),
                );
                faults.push(Fault::status("/ex/", 503).probability(p / 2.0));
            }
            "--access-token-ttl-secs" => {
                let secs: u64 = number(flag, value(flag, &mut it)?)?;
                if secs == 0 || secs > 365 * 86_400 {
                    return Err("--access-token-ttl-secs: expected 1 second to 365 days".into());
                }
                config.access_token_ttl = Duration::from_secs(secs);
            }
            "--seed" => config.seed = number(flag, value(flag, &mut it)?)?,
            other => return Err(format!("unknown flag '{other}' (see --help)")),
        }
    }
    if let Some(projects) = jira {
        seed.jira_projects = projects;
    }
    if let Some(spaces) = spaces {
        seed.confluence_spaces = spaces;
    }
    if let Some(n) = attachments {
        seed.jira_attachments = n;
        seed.confluence_attachments = n;
        seed.jira_large_attachments.clear();
        seed.confluence_large_attachments.clear();
    }
    seed.jira_large_attachments.extend(&large);
    seed.confluence_large_attachments.extend(&large);
    if sites == 0 {
        return Err("--sites must be at least 1".into());
    }
    config.sites = (1..=sites)
        .map(|n| SiteSpec::numbered(n, seed.clone()))
        .collect();
    if !clients.is_empty() {
        // Several --client flags with one id register several callbacks for that app.
        let mut merged: Vec<ClientApp> = Vec::new();
        for c in clients {
            match merged.iter_mut().find(|m| m.client_id == c.client_id) {
                Some(m) => m.redirect_uris.extend(c.redirect_uris),
                None => merged.push(c),
            }
        }
        config.clients = merged;
    }
    for uri in &redirects {
        config = config.with_redirect_uri(uri);
    }
    Ok(Command::Run(Box::new(config), faults))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_build_the_config() {
        let Ok(Command::Run(config, faults)) = parse(&args(
            "--port 0 --jira-projects alpha:15,BETA:5 --client app:s3cret:http://localhost:3000/cb?x=1 \
             --sites 2 --fault-rate 0.2 --large-attachment-mib 2 --seed 9",
        )) else {
            panic!("expected a config");
        };
        assert_eq!(config.sites.len(), 2);
        assert_eq!(
            config.sites[0].seed.jira_projects,
            vec![("ALPHA".to_owned(), 15), ("BETA".to_owned(), 5)]
        );
        assert!(
            config.sites[0]
                .seed
                .jira_large_attachments
                .contains(&(2 * 1024 * 1024))
        );
        assert_eq!(config.clients.len(), 1);
        assert_eq!(
            config.clients[0].redirect_uris,
            vec!["http://localhost:3000/cb?x=1"]
        );
        assert_eq!(config.seed, 9);
        assert_eq!(faults.len(), 2);
    }

    #[test]
    fn attachments_replace_the_presets_large_ones() {
        let Ok(Command::Run(config, _)) = parse(&args("--preset large --attachments 0")) else {
            panic!("expected a config");
        };
        let seed = &config.sites[0].seed;
        assert_eq!(seed.jira_attachments + seed.confluence_attachments, 0);
        assert!(seed.jira_large_attachments.is_empty());
        assert!(seed.confluence_large_attachments.is_empty());
        let Ok(Command::Run(config, _)) = parse(&args(
            "--preset large --attachments 3 --large-attachment-mib 1",
        )) else {
            panic!("expected a config");
        };
        assert_eq!(
            config.sites[0].seed.jira_large_attachments,
            vec![1024 * 1024]
        );
        let Ok(Command::Run(config, _)) = parse(&args("--preset large")) else {
            panic!("expected a config");
        };
        assert!(!config.sites[0].seed.jira_large_attachments.is_empty());
    }

    #[test]
    fn latency_delays_the_api_only() {
        let Ok(Command::Run(_, faults)) = parse(&args("--latency-ms 50")) else {
            panic!("expected a config");
        };
        assert_eq!(faults, vec![Fault::api_latency(50)]);
        assert_eq!(faults[0].path_prefix, "/ex/");
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&args("--port x")).is_err());
        assert!(parse(&args("--jira-projects ALPHA")).is_err());
        assert!(parse(&args("--client only-id")).is_err());
        assert!(parse(&args("--bogus")).is_err());
        assert!(parse(&args("--fault-rate 2")).is_err());
        assert!(matches!(parse(&args("--help")), Ok(Command::Help)));
    }
}
