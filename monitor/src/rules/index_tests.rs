//! Tests of the rule index: hand-made cases for each way an event can be
//! shaped, and the index against testing every rule, over Elastic's Linux
//! rules and a few hundred generated events.

use serde_json::{Value, json};

use super::super::{Loaded, Rule, RuleSet, load_dir, load_str};

/// A rule named `name` running `query`.
fn rule(name: &str, query: &str) -> Rule {
    let text = format!(
        "[rule]\nname = \"{name}\"\nrule_id = \"{name}\"\ndescription = \"d\"\n\
         risk_score = 1\nseverity = \"low\"\ntype = \"eql\"\nquery = '''{query}'''\n"
    );
    match load_str(&text, name) {
        Ok(Loaded::Rule(rule)) => *rule,
        other => panic!("{name}: {other:?}"),
    }
}

/// What testing every rule gives, by rule id.
fn brute_force<'a>(set: &'a RuleSet, event: &Value) -> Vec<&'a str> {
    let rules = set.rules().iter();
    rules
        .filter(|rule| rule.query.matches(event))
        .map(|rule| rule.rule_id.as_str())
        .collect()
}

fn ids<'a>(rules: impl Iterator<Item = &'a Rule>) -> Vec<&'a str> {
    rules.map(|rule| rule.rule_id.as_str()).collect()
}

fn small_set() -> RuleSet {
    [
        rule("dmesg", "process where process.name == \"dmesg\""),
        rule("file", "file where file.path == \"/etc/shadow\""),
        rule(
            "shells",
            "process where process.name in (\"bash\", \"sh\") and true",
        ),
        rule("any", "any where user.id == \"0\""),
        rule("args", "process where process.args == \"-c\""),
        rule(
            "never",
            "process where process.name == \"a\" and process.name == \"b\"",
        ),
        rule("any-sh", "any where process.name == \"sh\""),
    ]
    .into_iter()
    .collect()
}

#[test]
fn candidates_follow_category_and_name() {
    let set = small_set();
    let event = |category: Value, name: Value| {
        let process = json!({"name": name});
        json!({"event": {"category": category}, "process": process})
    };
    let candidates = |event: &Value| ids(set.candidates(event));

    let dmesg = event(json!(["process"]), json!("dmesg"));
    assert_eq!(candidates(&dmesg), ["dmesg", "any", "args"]);
    let sh = event(json!("process"), json!("sh"));
    assert_eq!(candidates(&sh), ["shells", "any", "args", "any-sh"]);
    let file = event(json!(["file"]), json!("dmesg"));
    assert_eq!(candidates(&file), ["file", "any"]);
    let none = json!({"process": {"name": "sh"}});
    assert_eq!(candidates(&none), ["any", "any-sh"]);
    let both = event(json!(["file", "process", "file"]), json!("ls"));
    assert_eq!(candidates(&both), ["file", "any", "args"]);
}

#[test]
fn unusual_values_fall_back_to_more_candidates() {
    let set = small_set();
    // Several names: every rule of the bucket, since pins are intersected.
    let names = json!({"event": {"category": "process"}, "process": {"name": ["a", "b"]}});
    assert_eq!(
        ids(set.candidates(&names)),
        ["dmesg", "shells", "any", "args", "never", "any-sh"]
    );
    assert_eq!(brute_force(&set, &names), ["never"]);
    assert_eq!(ids(set.matching(&names)), ["never"]);
    // A number as category: every bucket.
    let number = json!({"event": {"category": 7}, "process": {"name": "ls"}});
    assert_eq!(ids(set.candidates(&number)), ["file", "any", "args"]);
    // Dotted keys and nested arrays are read like the query engine reads them.
    let dotted = json!({"event.category": [["process"]], "process.name": "dmesg"});
    assert_eq!(ids(set.matching(&dotted)), ["dmesg"]);
    let objects = json!({"event": [{"category": "process"}], "process": [{"name": "sh"}]});
    assert_eq!(ids(set.matching(&objects)), ["shells", "any-sh"]);
}

#[test]
fn extend_and_collect_index_the_same() {
    let all = small_set();
    let mut grown = RuleSet::new(all.rules()[..3].to_vec());
    grown.extend(all.rules()[3..].iter().cloned());
    assert_eq!(grown.len(), all.len());
    let sh =
        json!({"event": {"category": "process"}, "process": {"name": "sh"}, "user": {"id": 0}});
    assert_eq!(ids(grown.matching(&sh)), ["shells", "any", "any-sh"]);
    assert_eq!(ids(grown.matching(&sh)), brute_force(&all, &sh));
    assert_eq!(RuleSet::default().matching(&sh).count(), 0);
}

/// A small deterministic generator (64-bit LCG), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }

    fn below(&mut self, n: usize) -> usize {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        &items[self.below(items.len())]
    }
}

/// Every value the rules pin for `field`, sorted, plus a few that none does.
fn vocabulary(rules: &[Rule], field: &str) -> Vec<String> {
    let mut values: Vec<String> = rules
        .iter()
        .filter_map(|rule| rule.query.pinned_values(field))
        .flatten()
        .chain(["ls", "-la", "/tmp/x", "bash"].map(String::from))
        .collect();
    values.sort();
    values.dedup();
    values
}

/// An exec event mixing values that Elastic's rules look for.
fn synthetic_event(rng: &mut Rng, words: &[Vec<String>; 4]) -> Value {
    let [names, args, parents, actions] = words;
    let name = rng.pick(names);
    let mut argv = vec![name.to_string()];
    for _ in 0..rng.below(4) {
        argv.push(rng.pick(args).to_string());
    }
    let category = match rng.below(20) {
        0 => json!(["file"]),
        1 => json!(["process", "network"]),
        2 => json!("process"),
        3 => Value::Null,
        _ => json!(["process"]),
    };
    let action = match rng.below(4) {
        0 => rng.pick(actions),
        _ => "exec",
    };
    let mut event = json!({
        "host": {"os": {"type": "linux"}},
        "event": {"category": category, "type": ["start"], "action": action},
        "process": {
            "name": name,
            "executable": format!("/usr/bin/{name}"),
            "args": argv,
            "args_count": argv.len(),
            "command_line": argv.join(" "),
            "parent": {"pid": 1, "name": rng.pick(parents)},
        },
        "user": {"id": if rng.below(2) == 0 { "0" } else { "1000" }},
    });
    match rng.below(40) {
        0 => event["process"]["name"] = json!([name, rng.pick(names)]),
        1 => event["process"]["name"] = Value::Null,
        2 => event["process"]["name"] = json!(7),
        _ => {}
    }
    event
}

#[test]
fn index_agrees_with_testing_every_rule_on_elastic_rules() {
    let report = load_dir(&crate::reference_data::dir(
        crate::reference_data::LINUX_RULES,
    ));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.loaded.len(), 222);
    let words = [
        "process.name",
        "process.args",
        "process.parent.name",
        "event.action",
    ]
    .map(|field| vocabulary(&report.loaded, field));
    let set = RuleSet::new(report.loaded);

    let mut rng = Rng(0x5eed);
    let (mut events, mut hits, mut tested) = (0, 0, 0);
    for _ in 0..500 {
        let event = synthetic_event(&mut rng, &words);
        let indexed = ids(set.matching(&event));
        assert_eq!(indexed, brute_force(&set, &event), "{event:#}");
        events += 1;
        hits += usize::from(!indexed.is_empty());
        tested += set.candidates(&event).count();
    }
    println!("{hits} of {events} events matched; {tested} rules tested in all");
    assert!(hits >= 50, "too few events match to test much: {hits}");
    assert!(tested < events * set.len() / 2, "the index narrows little");
}
