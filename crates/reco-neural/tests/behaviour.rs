//! The shared behaviour suite, run on every neural kind through the plug-in path.

use reco_models::testing::check_behaviour;
use reco_models::ModelSpec;

fn spec(json: &str) -> ModelSpec {
    reco_neural::register().expect("register");
    ModelSpec::from_value(serde_json::from_str(json).expect("json")).expect("spec")
}

#[test]
fn two_tower_softmax_behaves() {
    check_behaviour(&spec(
        r#"{"model":"two-tower","epochs":4,"layers":[64,32],"batch_size":256}"#,
    ));
}

#[test]
fn two_tower_bce_behaves() {
    check_behaviour(&spec(
        r#"{"model":"two-tower","loss":"bce","epochs":4,"layers":[64,32],"temperature":0.1}"#,
    ));
}

#[test]
fn content_dnn_behaves() {
    check_behaviour(&spec(
        r#"{"model":"content-dnn","epochs":3,"layers":[64,32]}"#,
    ));
}

#[test]
fn neural_cf_behaves() {
    check_behaviour(&spec(r#"{"model":"neural-cf","epochs":3}"#));
}
