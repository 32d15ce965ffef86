# The seed article's example (section 4) written with Keras' functional API instead of
# Sequential: the same model (LSTM(50, relu) -> Dense(1, sigmoid)) on the same random data.
# As with examples/seed_example.py, only the import lines differ from Keras code
# (from tensorflow.keras import Input, Model / from tensorflow.keras.layers import LSTM, Dense).
import numpy as np
from biolstm.keras import Input, Model
from biolstm.keras.layers import LSTM, Dense

# 生成随机数据
X = np.random.rand(100, 10, 1)
y = np.random.rand(100, 1)

# 构建 LSTM 模型 (functional form)
inputs = Input(shape=(10, 1))
hidden = LSTM(50, activation='relu')(inputs)
outputs = Dense(1, activation='sigmoid')(hidden)
model = Model(inputs=inputs, outputs=outputs)

# 编译模型
model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])

# 训练模型
model.fit(X, y, epochs=10, batch_size=32)
