// The mining job of the fuzz targets for a job's files (meta.json, shard .json): the one of
//   lode mine gaussian_mixture --for local --theta 0.5,-0.25 -n 4 --shard-size 2 --seed 2
// (the seed corpora come from it), with a stand-in model of the same name and widths, in
// the fuzz work directory.
#pragma once

#include "fuzz_support.hpp"
#include "lode/mining/job.hpp"
#include "lode/mining/theta_spec.hpp"

namespace lode::fuzz {

inline const Model& stand_in_model() {
  static const Model m = [] {
    Model m;
    m.name = "gaussian_mixture";
    m.parameters = {"theta1", "theta2"};
    m.observables = {"x1", "x2"};
    m.reference = {{0.5, -0.25}};
    return m;
  }();
  return m;
}

inline mining::MiningJob fuzz_job() {
  mining::MiningJob job;
  job.model = &stand_in_model();
  job.purpose = schema::Purpose::local;
  job.theta0 = mining::parse_theta_spec(stand_in_model(), "--theta", "0.5,-0.25");
  job.events = 4;
  job.shard_size = 2;
  job.seed = 2;
  job.out = work_dir() / "job";
  job.resume = true;
  return job;
}

}  // namespace lode::fuzz
