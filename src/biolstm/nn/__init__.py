"""The recurrent core: LSTM, GRU and RNN as drop-in torch.nn modules with visible gates."""

from .activations import ACTIVATION_NAMES, Activation, get_activation
from .cells import GRUCell, LSTMCell, RNNCell
from .init import chrono_init_, forget_bias_
from .layers import ENGINES, GRU, LSTM, RNN, RNNBase
from .minimal import MinGRU, MinLSTM, linear_scan, parallel_scan_log
from .trace import CarriedState, GateRecorder, Trace, carry_state, record_gates

__all__ = [
    "ACTIVATION_NAMES",
    "ENGINES",
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "CarriedState",
    "GRUCell",
    "GateRecorder",
    "LSTMCell",
    "MinGRU",
    "MinLSTM",
    "RNNBase",
    "RNNCell",
    "Trace",
    "carry_state",
    "chrono_init_",
    "forget_bias_",
    "get_activation",
    "linear_scan",
    "parallel_scan_log",
    "record_gates",
]
