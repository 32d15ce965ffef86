# The seed article's example (section 4), verbatim except for its import lines: the
# TensorFlow imports are replaced by biolstm's Keras-style API.
import numpy as np
from biolstm.keras.models import Sequential
from biolstm.keras.layers import LSTM, Dense

# 生成随机数据
X = np.random.rand(100, 10, 1)
y = np.random.rand(100, 1)

# 构建 LSTM 模型
model = Sequential()
model.add(LSTM(50, activation='relu', input_shape=(10, 1)))
model.add(Dense(1, activation='sigmoid'))

# 编译模型
model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])

# 训练模型
model.fit(X, y, epochs=10, batch_size=32)
