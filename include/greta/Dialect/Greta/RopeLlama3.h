//===- RopeLlama3.h - Llama 3's RoPE frequencies ----------------*- C++ -*-===//
//
// HF's _compute_llama3_parameters in f64: the importer's table for
// rope_type llama3 (lib/Target/HF/RopeScaling.cpp) and the planted fault
// that recomputes it with other parameters (greta-rope-llama3-fault).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_DIALECT_GRETA_ROPELLAMA3_H
#define GRETA_DIALECT_GRETA_ROPELLAMA3_H

#include <cmath>
#include <cstdint>
#include <vector>

namespace greta {

/// inv_freq[i] for i < headDim/2: theta^(-2i/d), divided by `factor` below
/// the low frequencies' wavelength (originalMax / lowFreqFactor), kept above
/// the high ones' (originalMax / highFreqFactor), blended linearly between.
inline std::vector<double> llama3InvFreq(double theta, int64_t headDim,
                                         double factor, double lowFreqFactor,
                                         double highFreqFactor,
                                         double originalMax) {
  std::vector<double> out;
  double lowWavelen = originalMax / lowFreqFactor;
  double highWavelen = originalMax / highFreqFactor;
  for (int64_t i = 0; i < headDim / 2; ++i) {
    double inv = 1.0 / std::pow(theta, double(2 * i) / double(headDim));
    double wavelen = 2 * M_PI / inv;
    if (wavelen > lowWavelen) {
      inv /= factor; // low frequencies: interpolated
    } else if (!(wavelen < highWavelen)) {
      // The band between: a linear blend (HF's smooth_factor).
      double smooth = (originalMax / wavelen - lowFreqFactor) /
                      (highFreqFactor - lowFreqFactor);
      inv = (1 - smooth) * inv / factor + smooth * inv;
    }
    out.push_back(inv);
  }
  return out;
}

} // namespace greta

#endif // GRETA_DIALECT_GRETA_ROPELLAMA3_H
