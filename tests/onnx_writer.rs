//! Plumbing test of the test-side ONNX writer (tests/common/onnx.rs): ORT loads what it writes, and a graph's
//! outputs are what the test put in. Understands nothing; other plumbing tests build on it.

mod common;

use common::onnx::{node, Dim, Elem, Graph, Tensor};
use scenewatch::config::ProviderChoice;
use scenewatch::infer::runtime::{self, open_model, SessionOptions};

#[test]
fn plumbing_graph_written_by_hand_runs_in_ort_with_known_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("double_plus_const.onnx");
    // y = 2·x + c, x [1, N] with N dynamic; z = a constant [2, 3]
    Graph::default()
        .input("x", Elem::F32, vec![Dim::Fixed(1), Dim::Named("n")])
        .output("y", Elem::F32, vec![Dim::Fixed(1), Dim::Named("n")])
        .output("z", Elem::F32, vec![Dim::Fixed(2), Dim::Fixed(3)])
        .init(Tensor::f32("two", &[], vec![2.0]))
        .init(Tensor::f32("c", &[1], vec![0.5]))
        .node(node("Mul", &["x", "two"], &["x2"], vec![]))
        .node(node("Add", &["x2", "c"], &["y"], vec![]))
        .node(node(
            "Constant",
            &[],
            &["z"],
            vec![(
                "value",
                common::onnx::Attr::Tensor(Tensor::f32("z", &[2, 3], vec![1., 2., 3., 4., 5., 6.])),
            )],
        ))
        .write(&path);
    let env = runtime::init(None, None, true).expect("ONNX Runtime (run scripts/deps.sh)");
    let model = open_model(
        env,
        "plumbing",
        &path,
        SessionOptions {
            provider: ProviderChoice::Cpu,
            intra_threads: 1,
            shared_pool: false,
            spinning: true,
        },
    )
    .expect("ORT opens the hand-written graph");
    runtime::check_signature(
        &model,
        &[("x", &[1, -1])],
        &[("y", &[1, -1]), ("z", &[2, 3])],
    )
    .expect("signature");
    let mut session = model.session;
    let x =
        ort::value::Tensor::from_array(([1usize, 4], vec![0.0f32, 1.0, -1.0, 10.0])).expect("x");
    let out = session.run(ort::inputs!["x" => x]).expect("run");
    let (_, y) = out["y"].try_extract_tensor::<f32>().expect("y");
    assert_eq!(y, &[0.5, 2.5, -1.5, 20.5]);
    let (shape, z) = out["z"].try_extract_tensor::<f32>().expect("z");
    assert_eq!(&shape[..], &[2, 3]);
    assert_eq!(z, &[1., 2., 3., 4., 5., 6.]);
}
