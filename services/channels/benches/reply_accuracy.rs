//! How well replies are read: recall and precision per intent on each labelled set in
//! tests/replies (LABEL<TAB>text), and how many replies are classified per second.
//!
//! cargo bench -p recobro-channels --bench reply_accuracy
//! (BENCH_REPLIES_DIR overrides the folder.)

use std::path::PathBuf;
use std::time::Instant;

use recobro_channels::replies::classify;
use recobro_proto::v1::ResponseIntent;

const INTENTS: [ResponseIntent; 5] = [
    ResponseIntent::OptOut,
    ResponseIntent::AlreadyPaid,
    ResponseIntent::PromiseToPay,
    ResponseIntent::Dispute,
    ResponseIntent::Other,
];

fn main() -> anyhow::Result<()> {
    let dir = std::env::var("BENCH_REPLIES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/replies"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "tsv"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let mut set = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (label, reply) = line
                .split_once('\t')
                .ok_or_else(|| anyhow::anyhow!("{}:{}: not LABEL<TAB>text", file.display(), n + 1))?;
            let intent = ResponseIntent::from_str_name(&format!("RESPONSE_INTENT_{label}"))
                .ok_or_else(|| anyhow::anyhow!("{}:{}: unknown label {label}", file.display(), n + 1))?;
            set.push((intent, reply));
        }
        let read: Vec<ResponseIntent> = set.iter().map(|(_, reply)| classify(reply)).collect();
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        println!("{name} ({} replies):", set.len());
        let right = set
            .iter()
            .zip(&read)
            .filter(|((label, _), read)| label == *read)
            .count();
        println!(
            "  replies read right, share: {:.3}",
            right as f64 / set.len() as f64
        );
        for intent in INTENTS {
            let labelled = set.iter().filter(|(label, _)| *label == intent).count();
            let predicted = read.iter().filter(|r| **r == intent).count();
            let hits = set
                .iter()
                .zip(&read)
                .filter(|((label, _), read)| *label == intent && **read == intent)
                .count();
            let name = intent
                .as_str_name()
                .trim_start_matches("RESPONSE_INTENT_")
                .to_lowercase();
            println!(
                "  {name} recall: {:.3} ({hits}/{labelled})",
                hits as f64 / labelled.max(1) as f64
            );
            println!(
                "  {name} precision: {:.3} ({hits}/{predicted})",
                hits as f64 / predicted.max(1) as f64
            );
        }
        for ((label, reply), read) in set.iter().zip(&read) {
            if label != read {
                println!(
                    "    miss: {} read as {}: {reply}",
                    label.as_str_name().trim_start_matches("RESPONSE_INTENT_"),
                    read.as_str_name().trim_start_matches("RESPONSE_INTENT_")
                );
            }
        }
        let rounds = 200;
        let started = Instant::now();
        for _ in 0..rounds {
            for (_, reply) in &set {
                std::hint::black_box(classify(reply));
            }
        }
        let per_second = (rounds * set.len()) as f64 / started.elapsed().as_secs_f64();
        println!("  replies classified, replies/s: {per_second:.0}");
    }
    Ok(())
}
