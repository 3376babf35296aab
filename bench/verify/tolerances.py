"""How far a re-derived number may be from the shipped one: `bench verify` (re-scoring, re-enhancing) and
the board's copy check read these tables; a module of its own so that the board need not import the scorer
(and torch) to learn them."""

#: re-scoring the shipped outputs: max |difference| per utterance
RESCORE_TOL = {"default": 2e-4, "dnsmos_sig": 2e-3, "dnsmos_bak": 2e-3, "dnsmos_ovrl": 2e-3}
#: re-enhancing from the weights: (max |difference| per utterance, max |difference| of the mean)
REENHANCE_TOL = {"pesq_wb": (0.05, 0.01), "pesq_nb": (0.05, 0.01), "stoi": (0.005, 0.001),
                 "estoi": (0.005, 0.001), "si_sdr": (0.25, 0.05), "snr": (0.25, 0.05),
                 "default": (0.05, 0.01)}
FP16_METRICS = ("pesq_wb", "stoi", "si_sdr")
#: re-enhancing where outputs are shipped: shipped-to-difference energy ratio (dB) per utterance, at least
REENHANCE_WAVEFORM_DB = 40.0
